// evhctl plugin inspect: checks and opens a plugin the way evhost does (the same search, trust rules and ABI checks)
// and prints its digest, the trust verdict and its descriptor, or the refusal evhost would log.
#include "cli/inspect.h"

#include "cli/command_line.h"
#include "config/sha256.h"
#include "plugin/library.h"
#include "plugin/search_path.h"
#include "plugin/trust.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace evh::cli {
namespace {
// Named too: evhctl is compiled in unity batches (host/CMakeLists.txt),
// where each command's Options and run() would meet the others'.
namespace inspect_command {

struct Options {
  std::string plugin;
  std::vector<std::string> dirs;
};

// The file's digest and each trust rule's verdict: printed before anything
// of the plugin is loaded, and all that is printed when it is refused.
void printTrust(const plugin::CheckedFile& file) {
  std::printf("path:            %s\n", file.path.c_str());
  if (!file.real_path.empty() && file.real_path != file.path) {
    std::printf("real path:       %s\n", file.real_path.c_str());
  }
  std::printf("sha256:          %s\n", file.sha256.empty() ? "(not read)" : file.sha256.c_str());
  std::printf("trust:           %s\n", file.refusal.empty() ? "trusted" : "refused");
  for (const auto& r : file.rules) {
    std::printf("  %-9s      %s: %s\n", r.rule.c_str(), r.passed ? "passed" : "REFUSED", r.text.c_str());
  }
}

int inspect(const Options& o) {
  try {
    const plugin::Found found = plugin::locate(o.plugin, ".", plugin::searchPath(o.dirs));
    // Nothing of the plugin runs (no dlopen, so no ELF constructor) unless
    // every trust rule passed, its ABI note included.
    plugin::CheckedFile file = plugin::checkTrust(found, "");
    if (file.sha256.empty() && file.fd >= 0) {
      file.sha256 = sha256HexOfFile(file.fd);  // refused before the digest, but worth showing
    }
    printTrust(file);
    if (!file.refusal.empty()) {
      std::fprintf(stderr, "evhctl: refused: %s\n", file.refusal.c_str());
      return 1;
    }
    auto lib = plugin::Library::load(file);
    const evh_plugin_desc& d = lib->desc();
    std::printf("name:            %s\n", lib->name().c_str());
    std::printf("version:         %s\n", lib->version().empty() ? "(none)" : lib->version().c_str());
    std::printf("description:     %s\n", lib->description().empty() ? "(none)" : lib->description().c_str());
    std::printf("abi:             %s (host %s)\n", plugin::abiString(d.abi_version).c_str(),
                plugin::abiString(EVH_ABI_VERSION).c_str());
    std::printf("flags:           %s%s\n", lib->blocking() ? "blocking" : "inline",
                lib->ownIdempotency() ? ", own idempotency marks" : "");
    if (lib->blocking()) {
      std::printf("max_concurrency: %u%s\n", d.max_concurrency, d.max_concurrency == 0 ? " (worker pool size)" : "");
    }
    std::printf("descriptor:      %u bytes\n", d.struct_size);
    std::printf("config check:    %s\n", lib->validateConfig() != nullptr
                                             ? "validate_config (evhost --check-config checks its config block)"
                                             : "none (its config block is checked only by init, at start)");
    return 0;
  } catch (const plugin::LoadError& e) {
    std::fprintf(stderr, "evhctl: refused: %s\n", e.what());
    return 1;
  }
}

}  // namespace inspect_command
}  // namespace

void addPluginInspect(CLI::App& app, Command& chosen) {
  using namespace inspect_command;
  CLI::App* group = app.add_subcommand("plugin", "Plugin libraries: inspect");
  CLI::App* cmd = group->add_subcommand(
      "inspect", "Print a plugin's sha256, trust verdict, name, version, ABI and flags, or why evhost would refuse it");
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
