// evhctl reload: POST /reload to evhost's ops listener (cli/ops_client.h),
// with the ops token when there is one, and the outcome in words: what
// changed, every problem that kept the running configuration, or why evhost
// did not run the reload (starting or stopping: exit 3).
#include "cli/reload.h"

#include "cli/command_line.h"
#include "cli/config_file.h"
#include "cli/ops_client.h"
#include "config/secret_file.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace evh::cli {
namespace {
// Named too: evhctl is compiled in unity batches (host/CMakeLists.txt),
// where each command's Options and run() would meet the others'.
namespace reload_command {

using Json = nlohmann::json;

// Exit status: reloaded; refused or failed; (2: bad arguments, CLI11's);
// not run -- evhost is starting or stopping, nothing changed.
constexpr int kReloaded = 0;
constexpr int kFailed = 1;
constexpr int kNotRun = 3;

std::string errorText(const Json& e) { return e.is_string() ? e.get<std::string>() : e.dump(); }

struct Options {
  std::string config;
  std::string url;
  std::string token_file;
};

int run(const Options& o) {
  std::optional<config::Config> cfg;
  if (!o.config.empty()) {
    cfg = loadConfigOrReport(o.config);
    if (!cfg) {
      return 1;
    }
  }
  const std::optional<std::string> base = opsBaseUrl("reload", o.config, o.url, cfg);
  if (!base) {
    return 1;
  }
  std::string token = cfg ? cfg->ops.token : std::string();
  if (!o.token_file.empty()) {
    config::SecretRead read = config::readSecretFile(o.token_file);
    if (!read.value) {
      std::fprintf(stderr, "evhctl reload: --token-file: %s\n", read.why.c_str());
      return 1;
    }
    token = std::move(*read.value);
  }
  std::vector<std::string> headers;
  if (!token.empty()) {
    headers.push_back("Authorization: Bearer " + token);
  }
  // A reload reads and checks the file first: allow it its time.
  const std::optional<OpsAnswer> got = opsRequest("reload", "POST", *base + "/reload", headers, 60000);
  if (!got) {
    return 1;
  }
  const Json j = Json::parse(got->body, nullptr, false);
  const std::string result = j.is_object() ? j.value("result", std::string()) : std::string();
  if (got->code == 200 && result == "ok") {
    std::printf("reloaded (generation %s): %s changed\n", j.value("generation", Json(0)).dump().c_str(),
                j.value("changed", std::string("nothing")).c_str());
    return kReloaded;
  }
  if (got->code == 422 && result == "failed") {
    std::fprintf(stderr, "evhctl reload: refused; evhost keeps its running configuration:\n");
    for (const auto& e : j.value("errors", Json::array())) {
      std::fprintf(stderr, "  %s\n", errorText(e).c_str());
    }
    return kFailed;
  }
  if (got->code == 503 && result == "not run") {
    const std::string reason = j.value("reason", std::string("no reason given"));
    std::fprintf(stderr, "evhctl reload: not run: %s; evhost keeps its running configuration%s\n", reason.c_str(),
                 reason == "evhost is starting" ? " (ask again once it has started)" : "");
    return kNotRun;
  }
  if (got->code == 401 || got->code == 403) {
    std::fprintf(stderr, "evhctl reload: %s/reload refused the request (HTTP %ld): %s\n", base->c_str(), got->code,
                 excerpt(got->body).c_str());
    return kFailed;
  }
  std::fprintf(stderr, "evhctl reload: %s/reload answered HTTP %ld: %s\n", base->c_str(), got->code,
               excerpt(got->body).c_str());
  return kFailed;
}

}  // namespace reload_command
}  // namespace

void addReload(CLI::App& app, Command& chosen) {
  using namespace reload_command;
  auto o = std::make_shared<Options>();
  CLI::App* cmd =
      app.add_subcommand("reload", "Make a running evhost reload its configuration (POST /reload of its ops listener)");
  cmd->footer(
      "Prints what changed, or every problem that made evhost keep its running configuration.\n"
      "The ops token (ops.token_file in the config) is sent when there is one.\n"
      "Exit status: 0 reloaded, 1 refused or failed (the reason on stderr), 2 bad arguments,\n"
      "3 not run: evhost is starting or stopping, its configuration unchanged (the reason on stderr).");
  cmd->add_option("-c,--config", o->config, "Ask the ops listener (ops.listen) of the YAML evhost runs with")
      ->type_name("FILE")
      ->envname("EVH_CONFIG");
  cmd->add_option("--url", o->url, "Ask this ops listener instead (http://HOST:PORT)")->type_name("URL");
  cmd->add_option("--token-file", o->token_file, "Send the ops token read from FILE (private to its owner)")
      ->type_name("FILE");
  cmd->callback([o, &chosen] {
    if (o->url.empty() && o->config.empty()) {
      badArguments("reload needs --config FILE (or EVH_CONFIG), or --url http://HOST:PORT");
    }
    chosen = [o] { return run(*o); };
  });
}

}  // namespace evh::cli
