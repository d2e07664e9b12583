// evhost: parse flags, load the config, run the server. Thin by design.
#include "app/server.h"
#include "common/log.h"
#include "config/config.h"
#include "loop/fatal_signals.h"
#include "plugin/library.h"
#include "plugin/search_path.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: evhost --config FILE [--plugin-dir DIR]... [--log-level LEVEL] [--ops-listen ADDR]\n"
    "       evhost --check-config FILE [--plugin-dir DIR]...\n"
    "       evhost --version | --help\n"
    "\n"
    "  --config FILE        run the deployment described by FILE (YAML)\n"
    "  --check-config FILE  validate FILE and its plugins; print ok or every error\n"
    "  --plugin-dir DIR     look for plugins given by bare name in DIR first (repeatable);\n"
    "                       then EVH_PLUGIN_PATH (colon-separated), then the bundled plugins\n"
    "  --log-level LEVEL    override logging.level: trace, debug, info, warn, error, critical, off\n"
    "  --ops-listen ADDR    override ops.listen: where /metrics, /healthz and /readyz listen\n"
    "                       (HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464; \"\" turns them off)\n";

struct Args {
  std::string config;
  bool check_only = false;
  std::vector<std::string> plugin_dirs;
  std::string log_level;
  std::optional<evh::config::Ops> ops;  // --ops-listen
};

// Returns 0 to go on, or an exit code (2 = usage error).
int parseArgs(int argc, char** argv, Args& out) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "evhost: %s needs a value\n%s", flag, kUsage);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return -1;
    }
    if (a == "--version") {
      std::printf("evhost %s (plugin ABI %u.%u)\n", EVH_VERSION, EVH_ABI_MAJOR, EVH_ABI_MINOR);
      return -1;
    }
    if (a == "--config" || a == "--check-config") {
      const char* v = value(a.c_str());
      if (v == nullptr) {
        return 2;
      }
      if (!out.config.empty()) {
        std::fprintf(stderr, "evhost: give one configuration file\n");
        return 2;
      }
      out.config = v;
      out.check_only = a == "--check-config";
    } else if (a == "--plugin-dir") {
      const char* v = value("--plugin-dir");
      if (v == nullptr) {
        return 2;
      }
      out.plugin_dirs.emplace_back(v);
    } else if (a == "--log-level") {
      const char* v = value("--log-level");
      if (v == nullptr) {
        return 2;
      }
      if (!evh::log::parseLevel(v)) {
        std::fprintf(stderr, "evhost: --log-level: unknown level \"%s\"\n", v);
        return 2;
      }
      out.log_level = v;
    } else if (a == "--ops-listen") {
      const char* v = value("--ops-listen");
      if (v == nullptr) {
        return 2;
      }
      evh::config::Ops ops;
      std::string why;
      if (!evh::config::parseListenAddress(v, ops, why)) {
        std::fprintf(stderr, "evhost: --ops-listen: invalid address \"%s\": %s\n", v, why.c_str());
        return 2;
      }
      ops.origin = evh::config::Origin{"command line", 0, "--ops-listen"};
      out.ops = ops;
    } else {
      std::fprintf(stderr, "evhost: unknown argument \"%s\"\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (out.config.empty()) {
    std::fprintf(stderr, "evhost: no configuration: give --config FILE\n%s", kUsage);
    return 2;
  }
  return 0;
}

// Resolves and opens every plugin without initialising it.
std::vector<std::string> checkPlugins(const evh::config::Config& cfg, const std::vector<std::string>& dirs) {
  std::vector<std::string> errors;
  auto search = evh::plugin::searchPath(dirs);
  for (const auto& p : cfg.plugins) {
    try {
      evh::plugin::Library::open(evh::plugin::resolve(p.path, p.config_dir, search));
    } catch (const evh::plugin::LoadError& e) {
      errors.push_back(p.origin.describe() + ": plugin \"" + p.name + "\": " + e.what());
    }
  }
  return errors;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (int rc = parseArgs(argc, argv, args); rc != 0) {
    return rc < 0 ? 0 : rc;
  }
  auto loaded = evh::config::loadFile(args.config);
  if (args.check_only) {
    auto errors = loaded.errors;
    if (loaded.config) {
      auto plugin_errors = checkPlugins(*loaded.config, args.plugin_dirs);
      errors.insert(errors.end(), plugin_errors.begin(), plugin_errors.end());
    }
    if (errors.empty()) {
      std::puts("ok");
      return 0;
    }
    for (const auto& e : errors) {
      std::fprintf(stderr, "%s\n", e.c_str());
    }
    return 1;
  }
  if (!loaded.config) {
    for (const auto& e : loaded.errors) {
      std::fprintf(stderr, "%s\n", e.c_str());
    }
    std::fprintf(stderr, "evhost: invalid configuration, not starting\n");
    return 1;
  }
  // Before any thread starts (they inherit the mask): SIGINT, SIGTERM and
  // SIGHUP are taken by the server's watchdog thread only.
  evh::app::blockWatchdogSignals();
  // A crash in a plugin is named on stderr (the loop runs on this thread).
  evh::installFatalSignalHandler();
  evh::AltSignalStack signal_stack;
  evh::config::Config& cfg = *loaded.config;
  if (args.ops) {
    cfg.ops = *args.ops;
  }
  // The plan's EventDebugger switch works without touching the config.
  if (const char* dbg = std::getenv("DEBUG_EVENTS"); dbg != nullptr && std::strcmp(dbg, "true") == 0) {
    cfg.logging.debug_events = true;
  }
  auto level = evh::log::parseLevel(args.log_level.empty() ? cfg.logging.level : args.log_level);
  // Lines go through a bounded queue to a writer thread: a slow or stuck
  // stderr never stalls the loop (lines are dropped and counted instead).
  evh::log::setup(level.value_or(spdlog::level::info),
                  cfg.logging.format == evh::config::LogFormat::Json ? evh::log::Format::Json : evh::log::Format::Text,
                  evh::log::Output::Async);
  // Crash reports (with a backtrace) are appended to a file in the state
  // directory, opened now: the handler only writes.
  {
    const std::string crash_file = cfg.stateDir() + "/evhost-crash.log";
    std::string why;
    if (!evh::setCrashFile(crash_file, why)) {
      evh::log::host().warn("crash file {} cannot be opened ({}): a crash is reported on stderr only", crash_file, why);
    }
  }
  int rc = 0;
  try {
    evh::app::Server server(std::move(cfg), evh::app::Options{args.plugin_dirs});
    server.start();
    rc = server.run();
  } catch (const std::exception& e) {
    evh::log::host().critical("{}", e.what());
    evh::log::drain();
    std::fprintf(stderr, "evhost: not starting:\n%s\n", e.what());
    rc = 1;
  }
  // Every line written before leaving; if stderr is stuck, leave without
  // exit()'s wait for the writer.
  if (!evh::log::drain(std::chrono::seconds(5))) {
    std::_Exit(rc);
  }
  return rc;
}
