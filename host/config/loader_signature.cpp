// A channel's `signature:` map: its keys (each from a private file or an
// environment variable, never inline), the timestamp tolerance and the
// replay check. A key's text never appears in an error.
#include <algorithm>
#include <string>

#include "config/loader.h"
#include "config/secret_file.h"
#include "signature/key.h"

namespace evh::config {
namespace {

// Key ids become a metrics label and a log word.
bool validKeyId(const std::string& id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

}  // namespace

void Loader::readSignature(const Entry& owner, Signature& out) {
  out.enabled = true;
  out.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
  bool has_keys = false;
  const bool is_map = readFields(
      owner,
      {
          {"keys",
           [&](const Entry& e) {
             has_keys = true;
             if (!e.value.IsSequence() || e.value.size() == 0) {
               error(valueMark(e), e.path, expectedGot("a list of keys, at least one", kindOf(e.value)));
               return;
             }
             size_t index = 0;
             for (auto it = e.value.begin(); it != e.value.end(); ++it, ++index) {
               const YAML::Node item = *it;
               readSigningKey(Entry{"", item.Mark().is_null() ? e.key_node : item, item, indexKey(e.path, index)}, out);
             }
           }},
          {"tolerance_s", [&](const Entry& e) { readInteger(e, out.tolerance_s, 1, 86400); }},
          {"replay_check", [&](const Entry& e) { readBool(e, out.replay_check); }},
      });
  if (is_map && !has_keys) {
    error(owner.key_node.Mark(), owner.path,
          "missing required key \"keys\" (the signing keys, from files or "
          "environment variables)");
  }
}

void Loader::readSigningKey(const Entry& owner, Signature& out) {
  SigningKey key;
  key.origin = Origin{file(), valueMark(owner).line + 1, owner.path};
  std::optional<Entry> id_entry;
  std::optional<Entry> file_entry;
  std::optional<Entry> env_entry;
  const bool is_map = readFields(owner, {
                                            {"id",
                                             [&](const Entry& e) {
                                               id_entry = e;
                                               readString(e, key.id);
                                             }},
                                            {"file", [&](const Entry& e) { file_entry = e; }},
                                            {"env", [&](const Entry& e) { env_entry = e; }},
                                        });
  if (!is_map) {
    return;
  }
  if (!id_entry) {
    error(valueMark(owner), owner.path, "missing required key \"id\" (a name for the key, shown in logs and metrics)");
  } else if (!validKeyId(key.id)) {
    error(valueMark(*id_entry), id_entry->path, "a key id is 1 to 64 of a-z A-Z 0-9 . _ -");
  } else if (std::any_of(out.keys.begin(), out.keys.end(), [&](const SigningKey& k) { return k.id == key.id; })) {
    error(valueMark(*id_entry), id_entry->path, "key id " + quote(key.id) + " is used twice in this channel");
  }
  if (file_entry.has_value() == env_entry.has_value()) {
    error(valueMark(owner), owner.path,
          "give exactly one of \"file\" (a file private to evhost's user) or \"env\" "
          "(an environment variable) for the key");
    return;
  }
  if (!options_.signing_keys) {
    out.keys.push_back(std::move(key));  // its form checked; its value not read
    return;
  }
  std::string text;
  const Entry& source = file_entry ? *file_entry : *env_entry;
  if (file_entry) {
    std::string path;
    readString(*file_entry, path);
    if (path.empty()) {
      error(valueMark(*file_entry), file_entry->path, "the key file's path is empty");
      return;
    }
    if (path.front() != '/') {
      path = config_dir_ + "/" + path;
    }
    SecretRead read = readSecretFile(path);
    if (!read.value) {
      error(valueMark(*file_entry), file_entry->path, read.why);
      return;
    }
    text = std::move(*read.value);
  } else {
    std::string name;
    readString(*env_entry, name);
    const std::optional<std::string> value = name.empty() ? std::nullopt : env_lookup_(name);
    if (!value || value->empty()) {
      error(valueMark(*env_entry), env_entry->path, "environment variable " + quote(name) + " is not set or empty");
      return;
    }
    tookFromEnvironment(*value);
    text = *value;
  }
  std::string why;
  if (!signature::decodeSecret(text, key.secret, why)) {
    error(valueMark(source), source.path, why);
    return;
  }
  out.keys.push_back(std::move(key));
}

}  // namespace evh::config
