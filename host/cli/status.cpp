// evhctl status: asks evhost's ops listener for GET /status (cli/ops_client.h)
// and prints it as tables -- or the JSON as evhost gave it (--json), for
// scripts.
#include "cli/status.h"

#include "cli/command_line.h"
#include "cli/config_file.h"
#include "cli/ops_client.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace evh::cli {

namespace {
// Named too: evhctl is compiled in unity batches (host/CMakeLists.txt),
// where each command's Options and run() would meet the others'.
namespace status_command {

using Json = nlohmann::json;

struct Options {
  std::string config;
  std::string url;
  bool json = false;
};

std::string text(const Json& j) {
  if (j.is_null()) {
    return "-";
  }
  if (j.is_string()) {
    return j.get<std::string>().empty() ? "-" : j.get<std::string>();
  }
  if (j.is_boolean()) {
    return j.get<bool>() ? "yes" : "no";
  }
  if (j.is_number_float()) {
    const double v = j.get<double>();
    char buf[32];
    std::snprintf(buf, sizeof buf, v == std::floor(v) ? "%.0f" : "%.1f", v);
    return buf;
  }
  return j.dump();
}

// Columns as wide as their widest cell.
void table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    width[c] = head[c].size();
    for (const auto& r : rows) {
      width[c] = std::max(width[c], r[c].size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      out += cells[c];
      if (c + 1 < cells.size()) {
        out += std::string(width[c] - cells[c].size() + 2, ' ');
      }
    }
    std::printf("%s\n", out.c_str());
  };
  line(head);
  for (const auto& r : rows) {
    line(r);
  }
}

std::vector<std::vector<std::string>> rowsOf(const Json& items, const std::vector<const char*>& keys) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : items) {
    std::vector<std::string> row;
    for (const char* k : keys) {
      row.push_back(item.contains(k) ? text(item[k]) : "-");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string duration(double seconds) {
  const auto s = static_cast<long long>(seconds);
  char buf[64];
  if (s >= 86400) {
    std::snprintf(buf, sizeof buf, "%lldd %lldh", s / 86400, s % 86400 / 3600);
  } else if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh %lldm", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm %llds", s / 60, s % 60);
  }
  return buf;
}

void print(const Json& s) {
  std::printf("evhost %s (plugin ABI %s), pid %s, up %s since %s\n", text(s["version"]).c_str(), text(s["abi"]).c_str(),
              text(s["pid"]).c_str(), duration(s.value("uptime_seconds", 0.0)).c_str(), text(s["started_at"]).c_str());
  const Json& cfg = s["config"];
  std::printf("config %s (sha256 %s), environment %s\n", text(cfg["file"]).c_str(),
              text(cfg["sha256"]).substr(0, 12).c_str(), text(cfg["environment"]).c_str());
  if (s.value("ready", false)) {
    std::printf("ready\n");
  } else {
    std::printf("NOT READY:\n");
    for (const auto& why : s["not_ready"]) {
      std::printf("  - %s\n", text(why).c_str());
    }
  }
  std::printf("\n");
  table({"CONNECTION", "ADDRESS", "UP", "OUTAGES", "LAST FAILURE"},
        rowsOf(s["connections"], {"name", "address", "up", "outages", "last_failure"}));
  std::printf("\n");
  table({"PLUGIN", "LIBRARY", "VERSION", "ABI", "HEALTH", "BREAKER", "CALLS", "OK", "RETRY", "REJECT", "TIMEOUT",
         "ERROR", "DEAD", "WAITING"},
        [&] {
          auto rows = rowsOf(s["plugins"], {"name", "library", "version", "abi", "health", "breaker", "calls", "ok",
                                            "retry", "reject", "timeout", "error", "dead_lettered"});
          size_t i = 0;
          for (const auto& p : s["plugins"]) {
            const long long waiting = p.value("retry_waiting", 0LL) + p.value("breaker_waiting", 0LL);
            rows[i++].push_back(std::to_string(waiting));
          }
          return rows;
        }());
  for (const auto& p : s["plugins"]) {
    if (!p.value("health_detail", std::string()).empty()) {
      std::printf("  %s: %s\n", text(p["name"]).c_str(), text(p["health_detail"]).c_str());
    }
  }
  if (!s["streams"].empty()) {
    std::printf("\n");
    table({"STREAM", "GROUP", "CONSUMER", "IN FLIGHT", "PENDING", "LAG", "OLDEST PENDING (s)"},
          rowsOf(s["streams"],
                 {"key", "group", "consumer", "in_flight", "pending", "lag", "oldest_pending_age_seconds"}));
  }
  std::printf("\n");
  table({"CHANNEL", "TRANSPORT", "KEY"}, rowsOf(s["channels"], {"name", "transport", "key"}));
}

int run(const Options& o) {
  const std::optional<std::string> base =
      opsBaseUrl("status", o.config, o.url, o.url.empty() ? loadConfigOrReport(o.config) : std::nullopt);
  if (!base) {
    return 1;
  }
  const std::optional<OpsAnswer> got = opsRequest("status", "GET", *base + "/status");
  if (!got) {
    return 1;
  }
  if (got->code != 200) {
    std::fprintf(stderr, "evhctl status: %s/status answered HTTP %ld: %s\n", base->c_str(), got->code,
                 excerpt(got->body).c_str());
    return 1;
  }
  if (o.json) {
    std::printf("%s\n", got->body.c_str());
    return 0;
  }
  const Json s = Json::parse(got->body, nullptr, false);
  if (s.is_discarded() || !s.is_object()) {
    std::fprintf(stderr, "evhctl status: %s/status did not answer JSON\n", base->c_str());
    return 1;
  }
  print(s);
  return 0;
}

}  // namespace status_command
}  // namespace

void addStatus(CLI::App& app, Command& chosen) {
  using namespace status_command;
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("status", "A running evhost's state, from GET /status of its ops listener");
  cmd->footer(
      "Prints version, uptime, config, readiness, connections, plugins, streams and channels as tables.\n"
      "Exit status: 0 done, 1 failed (the reason on stderr), 2 bad arguments.");
  cmd->add_option("-c,--config", o->config, "Ask the ops listener (ops.listen) of the YAML evhost runs with")
      ->type_name("FILE")
      ->envname("EVH_CONFIG");
  cmd->add_option("--url", o->url, "Ask this ops listener instead (http://HOST:PORT)")->type_name("URL");
  cmd->add_flag("--json", o->json, "Print GET /status's JSON as evhost gave it, for scripts");
  cmd->callback([o, &chosen] {
    if (o->url.empty() && o->config.empty()) {
      badArguments("status needs --config FILE (or EVH_CONFIG), or --url http://HOST:PORT");
    }
    chosen = [o] { return run(*o); };
  });
}

}  // namespace evh::cli
