// evhctl: the operator CLI: plugin inspection, the dead-letter list, publishing events.
#include "cli/dlq.h"
#include "cli/publish.h"
#include "cli/status.h"
#include "plugin/library.h"
#include "plugin/search_path.h"

#include <cstdio>
#include <string>
#include <vector>

namespace {

const std::string kUsage =
    std::string(
        "usage: evhctl plugin inspect PLUGIN [--plugin-dir DIR]...\n"
        "       evhctl dlq [--config FILE] list|show|remove|replay|purge ...\n"
        "       evhctl publish [--config FILE] [--stream] [--channel NAME] ... [--file FILE | --payload JSON | -]\n"
        "       evhctl status [--config FILE] [--url URL] [--json]\n"
        "\n"
        "  plugin inspect PLUGIN                    print a plugin's name, version, ABI version and flags;\n"
        "                                           exit 1 with the reason when evhost would refuse it.\n"
        "                                           PLUGIN is a path, or a bare name looked up like evhost does.\n") +
    evh::cli::kDlqUsage + evh::cli::kPublishUsage + evh::cli::kStatusUsage +
    "\n"
    "exit status: 0 done, 1 failed (reason on stderr), 2 bad arguments\n";

int inspect(const std::string& what, const std::vector<std::string>& dirs) {
  try {
    std::string path = evh::plugin::resolve(what, ".", evh::plugin::searchPath(dirs));
    auto lib = evh::plugin::Library::open(path);
    const evh_plugin_desc& d = lib->desc();
    std::printf("path:            %s\n", path.c_str());
    std::printf("name:            %s\n", lib->name().c_str());
    std::printf("version:         %s\n", lib->version().empty() ? "(none)" : lib->version().c_str());
    std::printf("description:     %s\n", lib->description().empty() ? "(none)" : lib->description().c_str());
    std::printf("abi:             %s (host %s)\n", evh::plugin::abiString(d.abi_version).c_str(),
                evh::plugin::abiString(EVH_ABI_VERSION).c_str());
    std::printf("flags:           %s\n", lib->blocking() ? "blocking" : "inline");
    if (lib->blocking()) {
      std::printf("max_concurrency: %u%s\n", d.max_concurrency, d.max_concurrency == 0 ? " (worker pool size)" : "");
    }
    std::printf("descriptor:      %u bytes\n", d.struct_size);
    return 0;
  } catch (const evh::plugin::LoadError& e) {
    std::fprintf(stderr, "evhctl: refused: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage.c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::printf("evhctl %s (plugin ABI %u.%u)\n", EVH_VERSION, EVH_ABI_MAJOR, EVH_ABI_MINOR);
    return 0;
  }
  if (args[0] == "dlq") {
    return evh::cli::runDlq(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (args[0] == "status") {
    return evh::cli::runStatus(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (args[0] == "publish") {
    return evh::cli::runPublish(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (args.size() >= 3 && args[0] == "plugin" && args[1] == "inspect") {
    std::vector<std::string> dirs;
    std::string target;
    for (size_t i = 2; i < args.size(); ++i) {
      if (args[i] == "--plugin-dir" && i + 1 < args.size()) {
        dirs.push_back(args[++i]);
      } else if (target.empty() && args[i].rfind("--", 0) != 0) {
        target = args[i];
      } else {
        std::fprintf(stderr, "evhctl: unexpected argument \"%s\"\n%s", args[i].c_str(), kUsage.c_str());
        return 2;
      }
    }
    if (target.empty()) {
      std::fprintf(stderr, "evhctl: plugin inspect needs a PLUGIN\n%s", kUsage.c_str());
      return 2;
    }
    return inspect(target, dirs);
  }
  std::fprintf(stderr, "evhctl: unknown command\n%s", kUsage.c_str());
  return 2;
}
