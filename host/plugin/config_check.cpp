// Plugins' config blocks checked up front (see config_check.h): calling validate_config, collecting what it reports
// from C, and placing each problem at its YAML line.
#include "plugin/config_check.h"

#include "common/log_escape.h"
#include "config/mask.h"
#include "loop/current_call.h"
#include "plugin/registry.h"
#include "plugin/search_path.h"
#include "plugin/status.h"

#include <algorithm>
#include <map>
#include <utility>

namespace evh::plugin {
namespace {

struct Problem {
  std::string pointer;
  std::string message;
};

// What one validate_config call reported. The plugin holds it as its `ctx`
// during the call only.
struct Collector {
  std::vector<Problem> problems;
  size_t dropped = 0;  // past kMaxConfigProblems
};

// A plugin's text as bytes: NULL with a length is an empty text, not a read
// of address 0.
std::string_view bytes(evh_str s) noexcept {
  return s.ptr == nullptr || s.len == 0 ? std::string_view() : std::string_view(s.ptr, s.len);
}

// evh_config_error_fn. Called from the plugin's C code: throws nothing.
void collect(void* ctx, evh_str pointer, evh_str message) noexcept {
  auto* c = static_cast<Collector*>(ctx);
  if (c == nullptr) {
    return;
  }
  if (c->problems.size() >= kMaxConfigProblems) {
    ++c->dropped;
    return;
  }
  try {
    // Kept whole for now: masking must see a secret whole before anything is cut.
    c->problems.push_back(Problem{std::string(bytes(pointer)), std::string(bytes(message))});
  } catch (...) {
    ++c->dropped;  // out of memory: counted, not lost silently
  }
}

// Cuts `text` to at most `max` bytes, not inside a UTF-8 sequence.
void cut(std::string& text, size_t max) {
  if (text.size() <= max) {
    return;
  }
  size_t at = max;
  while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0U) == 0x80U) {
    --at;
  }
  text.resize(at);
  text += "...";
}

// One line of output: control characters escaped, so a message cannot start a line of its own.
std::string oneLine(std::string_view text) {
  std::string out;
  log::appendEscaped(text, out);
  return out;
}

}  // namespace

std::string maskExpanded(std::string text, const config::ConfigBlockMap& map) {
  return config::maskValues(std::move(text), map.expanded);
}

std::vector<std::string> checkConfig(const Library& lib, const config::Plugin& p) {
  const Library::ValidateConfigFn validate = lib.validateConfig();
  if (validate == nullptr) {
    return {};
  }
  Collector collector;
  evh_status status = EVH_OK;
  {
    // Named by the fatal-signal handler if the plugin crashes in it.
    const CallSite site{p.name, "validate_config", nullptr, lib.desc().name};
    const ThreadCallScope scope(site);
    status = validate(evh_str{p.config_json.c_str(), p.config_json.size()}, &collect, &collector);
  }
  const auto where = [&](const std::string& pointer) {
    const int line = p.config_map.lineOf(pointer);
    return p.origin.file + ":" + std::to_string(line > 0 ? line : p.origin.line) + ": plugin " + p.name + " config" +
           (pointer.empty() ? std::string() : " " + oneLine(maskExpanded(pointer, p.config_map))) + ": ";
  };
  // In the file's order (a plugin walking a parsed object may see its keys sorted).
  std::stable_sort(collector.problems.begin(), collector.problems.end(), [&](const Problem& a, const Problem& b) {
    return p.config_map.lineOf(a.pointer) < p.config_map.lineOf(b.pointer);
  });
  std::vector<std::string> errors;
  for (Problem& problem : collector.problems) {
    std::string message = maskExpanded(std::move(problem.message), p.config_map);
    cut(message, kMaxConfigMessageBytes);
    if (message.empty()) {
      message = "(validate_config gave no message)";
    }
    cut(problem.pointer, 200);
    errors.push_back(where(problem.pointer) + oneLine(message));
  }
  if (collector.dropped > 0) {
    errors.push_back(where("") + "... and " + std::to_string(collector.dropped) + " more problem" +
                     (collector.dropped == 1 ? "" : "s"));
  }
  if (errors.empty() && status != EVH_OK) {
    // Refused (or failed) without saying why: the config cannot pass.
    errors.push_back(where("") + "validate_config of " + lib.path() + " answered " + statusName(status) +
                     " without reporting a problem");
  }
  return errors;
}

PluginsCheck checkPlugins(const std::vector<config::Plugin>& plugins, const std::vector<std::string>& search_dirs) {
  PluginsCheck out;
  std::map<std::string, LibraryPtr> by_path;
  for (const config::Plugin& p : plugins) {
    try {
      const LibraryPtr lib = openConfigured(p, search_dirs, by_path);
      if (lib->validateConfig() == nullptr) {
        out.notes.push_back(p.origin.describe() + ": plugin \"" + p.name + "\" (" + lib->name() + ", ABI " +
                            abiString(lib->desc().abi_version) +
                            ") has no validate_config: its config is checked only by its init, when evhost starts");
        continue;
      }
      std::vector<std::string> errors = checkConfig(*lib, p);
      out.errors.insert(out.errors.end(), std::make_move_iterator(errors.begin()),
                        std::make_move_iterator(errors.end()));
    } catch (const LoadError& e) {
      out.errors.push_back(p.origin.describe() + ": plugin \"" + p.name + "\": " + e.what());
    }
  }
  return out;
}

}  // namespace evh::plugin
