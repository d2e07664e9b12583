// evhctl plugin inspect: opens a plugin the way evhost does (the same search, the same ABI checks) and prints its
// descriptor, or the refusal evhost would log.
#include "cli/inspect.h"

#include "cli/command_line.h"
#include "plugin/library.h"
#include "plugin/search_path.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace evh::cli {
namespace {

struct Options {
  std::string plugin;
  std::vector<std::string> dirs;
};

int inspect(const Options& o) {
  try {
    std::string path = plugin::resolve(o.plugin, ".", plugin::searchPath(o.dirs));
    auto lib = plugin::Library::open(path);
    const evh_plugin_desc& d = lib->desc();
    std::printf("path:            %s\n", path.c_str());
    std::printf("name:            %s\n", lib->name().c_str());
    std::printf("version:         %s\n", lib->version().empty() ? "(none)" : lib->version().c_str());
    std::printf("description:     %s\n", lib->description().empty() ? "(none)" : lib->description().c_str());
    std::printf("abi:             %s (host %s)\n", plugin::abiString(d.abi_version).c_str(),
                plugin::abiString(EVH_ABI_VERSION).c_str());
    std::printf("flags:           %s\n", lib->blocking() ? "blocking" : "inline");
    if (lib->blocking()) {
      std::printf("max_concurrency: %u%s\n", d.max_concurrency, d.max_concurrency == 0 ? " (worker pool size)" : "");
    }
    std::printf("descriptor:      %u bytes\n", d.struct_size);
    return 0;
  } catch (const plugin::LoadError& e) {
    std::fprintf(stderr, "evhctl: refused: %s\n", e.what());
    return 1;
  }
}

}  // namespace

void addPluginInspect(CLI::App& app, Command& chosen) {
  CLI::App* group = app.add_subcommand("plugin", "Plugin libraries: inspect");
  CLI::App* cmd =
      group->add_subcommand("inspect", "Print a plugin's name, version, ABI and flags, or why evhost would refuse it");
  cmd->footer("Exit status: 0 done, 1 evhost would refuse it (the reason on stderr), 2 bad arguments.");
  auto o = std::make_shared<Options>();
  cmd->add_option("PLUGIN", o->plugin, "A path, or a bare name looked up as evhost does")->required();
  cmd->add_option("--plugin-dir", o->dirs, "Look for a bare name in DIR first (repeatable)")
      ->type_name("DIR")
      ->allow_extra_args(false);
  cmd->callback([o, &chosen] { chosen = [o] { return inspect(*o); }; });
  group->callback([group] {
    if (group->get_subcommands().empty()) {
      badArguments("plugin needs a command: inspect");
    }
  });
}

}  // namespace evh::cli
