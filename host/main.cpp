// evhost: parse flags (CLI11), load the config, run the server. Thin by design.
#include "app/server.h"
#include "app/sources.h"
#include "cli/command_line.h"
#include "common/log.h"
#include "config/config.h"
#include "loop/fatal_signals.h"
#include "plugin/config_check.h"
#include "plugin/search_path.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

struct Args {
  std::string config;
  bool check_only = false;
  std::vector<std::string> plugin_dirs;
  std::string log_level;
  std::optional<evh::config::Ops> ops;  // --ops-listen
};

// evhost's options, into `out`.
void describe(CLI::App& app, Args& out) {
  app.set_version_flag("--version",
                       std::string("evhost ") + EVH_VERSION + " (plugin ABI " + std::to_string(EVH_ABI_MAJOR) + "." +
                           std::to_string(EVH_ABI_MINOR) + ")",
                       "Print evhost's version and plugin ABI and exit");
  CLI::Option* run =
      app.add_option("--config", out.config, "Run the deployment described by FILE (YAML)")->type_name("FILE");
  app.add_option_function<std::string>(
         "--check-config",
         [&out](const std::string& file) {
           out.config = file;
           out.check_only = true;
         },
         "Validate FILE, its plugins and their config blocks; print ok or every error")
      ->type_name("FILE")
      ->excludes(run);
  app.add_option("--plugin-dir", out.plugin_dirs, "Look for plugins given by bare name in DIR first (repeatable)")
      ->type_name("DIR")
      ->allow_extra_args(false);
  app.add_option("--log-level", out.log_level,
                 "Override logging.level: trace, debug, info, warn, error, critical or off")
      ->type_name("LEVEL")
      ->check(CLI::Validator(
          [](const std::string& v) { return evh::log::parseLevel(v) ? "" : "unknown level \"" + v + "\""; }, ""));
  app.add_option_function<std::string>(
         "--ops-listen",
         [&out](const std::string& v) {
           evh::config::Ops ops;
           std::string why;
           if (!evh::config::parseListenAddress(v, ops, why)) {
             throw CLI::ValidationError("--ops-listen", "invalid address \"" + v + "\": " + why);
           }
           ops.origin = evh::config::Origin{"command line", 0, "--ops-listen"};
           out.ops = ops;
         },
         "Override ops.listen: HOST:PORT of /metrics, /healthz, /readyz, /status (\"\" turns them off)")
      ->type_name("ADDR");
  app.footer(
      "A plugin given by bare name is looked up in each --plugin-dir, then in EVH_PLUGIN_PATH (colon-separated),\n"
      "then among the bundled plugins. ADDR is e.g. 127.0.0.1:9464 or [::1]:9464.\n"
      "Exit status: 0 stopped (or the configuration is ok), 1 failed (the reason on stderr), 2 bad arguments.");
  app.callback([&out] {
    if (out.config.empty()) {
      evh::cli::badArguments("no configuration: give --config FILE (or --check-config FILE)");
    }
  });
}

// Loads redis.tls's files as evhost would at start (CAs, certificate, key).
std::vector<std::string> checkTls(const evh::config::Config& cfg) {
  if (!cfg.redis.tls.enabled) {
    return {};
  }
  try {
    evh::app::tlsContextOf(cfg.redis.tls);
  } catch (const evh::redis::TlsError& e) {
    return {e.what()};
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app{"evhost: runs the plugins a YAML deployment routes Redis events to", "evhost"};
  describe(app, args);
  if (std::optional<int> rc = evh::cli::parseCommandLine(app, argc, argv)) {
    return *rc;
  }
  auto loaded = evh::config::loadFile(args.config);
  if (args.check_only) {
    // A plugin's validate_config runs here: a crash in it is named.
    evh::installFatalSignalHandler();
    auto errors = loaded.errors;
    if (loaded.config) {
      auto plugins = evh::plugin::checkPlugins(loaded.config->plugins, evh::plugin::searchPath(args.plugin_dirs));
      errors.insert(errors.end(), plugins.errors.begin(), plugins.errors.end());
      for (const auto& note : plugins.notes) {
        std::printf("note: %s\n", note.c_str());
      }
      auto tls_errors = checkTls(*loaded.config);
      errors.insert(errors.end(), tls_errors.begin(), tls_errors.end());
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
  // A write to a socket or pipe whose other end is gone (Redis closing a
  // connection mid-write under hiredis, a plugin's own client, stderr on a
  // pipe nobody reads any more) raises SIGPIPE, whose default action ends the
  // process at once, unlogged. Ignored, the write fails with EPIPE instead,
  // and that failure is handled where it happens (a lost Redis connection is
  // noticed and reconnected). Process-wide: every thread, plugins' included.
  std::signal(SIGPIPE, SIG_IGN);
  // A crash in a plugin is named on stderr (the loop runs on this thread).
  evh::installFatalSignalHandler();
  evh::AltSignalStack signal_stack;
  evh::config::Config& cfg = *loaded.config;
  // What the command line and the environment override, now and at each
  // reload.
  const auto overrides = [ops = args.ops, level = args.log_level](evh::config::Config& c) {
    if (ops) {
      c.ops = *ops;
    }
    if (!level.empty()) {
      c.logging.level = level;
    }
    // The plan's EventDebugger switch works without touching the config.
    if (const char* dbg = std::getenv("DEBUG_EVENTS"); dbg != nullptr && std::strcmp(dbg, "true") == 0) {
      c.logging.debug_events = true;
    }
  };
  overrides(cfg);
  auto level = evh::log::parseLevel(cfg.logging.level);
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
    evh::app::Server server(std::move(cfg), evh::app::Options{args.plugin_dirs, overrides});
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
