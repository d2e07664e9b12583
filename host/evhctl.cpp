// evhctl: the operator CLI: plugin inspection, the dead-letter list, publishing events, a running evhost's status
// and reload.
// Each command adds its own options (CLI11) next to its code, in cli/.
#include <evh/plugin.h>
#include "cli/command_line.h"
#include "cli/dlq.h"
#include "cli/inspect.h"
#include "cli/publish.h"
#include "cli/reload.h"
#include "cli/status.h"

#include <csignal>
#include <optional>
#include <string>

int main(int argc, char** argv) {
  // dlq and publish write to Redis, status to evhost's ops listener: a peer
  // gone mid-write must be an error evhctl reports (EPIPE), not a silent
  // death by SIGPIPE. Output into a closed pipe (evhctl ... | head) no
  // longer ends evhctl either: it finishes what it was doing.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"evhctl: the operator CLI of evhost", "evhctl"};
  app.set_version_flag("--version",
                       std::string("evhctl ") + EVH_VERSION + " (plugin ABI " + std::to_string(EVH_ABI_MAJOR) + "." +
                           std::to_string(EVH_ABI_MINOR) + ")",
                       "Print evhctl's version and plugin ABI and exit");
  evh::cli::Command chosen;
  evh::cli::addPluginInspect(app, chosen);
  evh::cli::addDlq(app, chosen);
  evh::cli::addPublish(app, chosen);
  evh::cli::addStatus(app, chosen);
  evh::cli::addReload(app, chosen);
  // After the commands: a subcommand copies its parent's footer when added.
  app.footer(
      "Run evhctl COMMAND --help for a command's options.\n"
      "Exit status: 0 done, 1 failed (the reason on stderr), 2 bad arguments.");
  app.callback([&app] {
    if (app.get_subcommands().empty()) {
      evh::cli::badArguments("give a command: plugin, dlq, publish, status or reload");
    }
  });
  if (std::optional<int> rc = evh::cli::parseCommandLine(app, argc, argv)) {
    return *rc;
  }
  return chosen();
}
