// The `plugins:` and `dead_letter:` sections, and the check that every plugin a route or dead_letter names is defined
// (after the walk: `plugins:` may come after them in the file).
#include <algorithm>
#include <cctype>
#include <set>
#include <string>

#include "config/loader.h"
#include "config/suggest.h"

namespace evh::config {
namespace {

bool isPluginNameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

}  // namespace

void Loader::readPlugins(const Entry& owner) {
  forEachEntry(owner, [&](const Entry& e) { readPlugin(e); });
}

void Loader::readPlugin(const Entry& owner) {
  // Counted as defined even when invalid, so that routes naming it do not
  // add a second, misleading error.
  defined_plugins_.push_back(owner.key);
  if (owner.key.empty() || !std::all_of(owner.key.begin(), owner.key.end(), isPluginNameChar)) {
    error(owner.key_node.Mark(), owner.path,
          "invalid plugin instance name " + quote(owner.key) + " (use lowercase letters, digits, \"_\" and \"-\")");
  }
  Plugin plugin;
  plugin.name = owner.key;
  plugin.config_json = "{}";
  plugin.config_dir = config_dir_;
  plugin.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
  bool has_path = false;
  const bool is_map =
      readFields(owner, {
                            {"path",
                             [&](const Entry& e) {
                               has_path = true;
                               readString(e, plugin.path);
                               if (e.value.IsScalar() && plugin.path.empty()) {
                                 error(valueMark(e), e.path, "must not be empty");
                               }
                             }},
                            {"sha256", [&](const Entry& e) { readPluginPin(e, plugin); }},
                            {"config", [&](const Entry& e) { readPluginConfig(e, plugin); }},
                            {"timeout_ms", [&](const Entry& e) { readInteger(e, plugin.timeout_ms, 0, kU32Max); }},
                            {"circuit_breaker",
                             [&](const Entry& e) {
                               plugin_breakers_.emplace_back(config_.plugins.size(), BreakerKeys{});
                               readBreakerKeys(e, plugin_breakers_.back().second);
                             }},
                        });
  if (is_map && !has_path) {
    error(owner.key_node.Mark(), owner.path, "missing required key \"path\"");
  }
  config_.plugins.push_back(std::move(plugin));
}

void Loader::readPluginPin(const Entry& e, Plugin& plugin) {
  const std::optional<std::string> pin = text(e, "the plugin file's SHA-256 (64 hex digits)");
  if (!pin) {
    return;
  }
  const bool hex =
      std::all_of(pin->begin(), pin->end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  if (pin->size() != 64 || !hex) {
    error(valueMark(e), e.path,
          "must be the plugin file's SHA-256 as 64 hexadecimal digits (sha256sum FILE, or evhctl plugin inspect, "
          "prints it); got " +
              std::to_string(pin->size()) + " characters" + (hex ? "" : ", not all hexadecimal"));
    return;
  }
  plugin.sha256.resize(pin->size());
  std::transform(pin->begin(), pin->end(), plugin.sha256.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
}

void Loader::readPluginConfig(const Entry& e, Plugin& plugin) {
  plugin.config_map.line = e.key_node.Mark().line + 1;
  if (!e.value.IsDefined() || e.value.IsNull()) {
    return;  // `config:` with nothing after it: the same as no block
  }
  if (std::optional<std::string> json = jsonText(e, &plugin.config_map)) {
    plugin.config_json = std::move(*json);
  }
}

void Loader::readDeadLetter(const Entry& owner) {
  DeadLetter& dead_letter = config_.dead_letter;
  dead_letter.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
  readFields(owner, {
                        {"plugin",
                         [&](const Entry& e) {
                           const std::optional<std::string> name = text(e, "a plugin instance name");
                           if (!name) {
                             return;
                           }
                           dead_letter.plugin = *name;
                           if (!name->empty()) {  // empty: no dead-letter plugin, the file only
                             plugin_refs_.push_back(PluginRef{*name, valueMark(e), e.path});
                           }
                         }},
                        {"fallback_file",
                         [&](const Entry& e) {
                           readString(e, dead_letter.fallback_file);
                           if (e.value.IsScalar() && dead_letter.fallback_file.empty()) {
                             error(valueMark(e), e.path, "must not be empty");
                           }
                         }},
                        {"timeout_ms", [&](const Entry& e) { readInteger(e, dead_letter.timeout_ms, 1, kU32Max); }},
                        {"channel",
                         [&](const Entry& e) {
                           readString(e, dead_letter.channel);
                           if (e.value.IsScalar() && dead_letter.channel.empty()) {
                             error(valueMark(e), e.path, "must not be empty");
                           }
                         }},
                    });
}

void Loader::checkPluginReferences() {
  const std::set<std::string> defined(defined_plugins_.begin(), defined_plugins_.end());
  for (const PluginRef& ref : plugin_refs_) {
    if (defined.count(ref.name) != 0) {
      continue;
    }
    std::string what = "undefined plugin " + quote(ref.name);
    if (const std::optional<std::string> guess = closestMatch(ref.name, defined_plugins_)) {
      what += " (did you mean " + quote(*guess) + "?)";
    } else if (defined_plugins_.empty()) {
      what += " (no plugins are defined under \"plugins\")";
    } else {
      what += " (defined: " + joinList(defined_plugins_, ", ") + ")";
    }
    error(ref.mark, ref.path, what);
  }
}

}  // namespace evh::config
