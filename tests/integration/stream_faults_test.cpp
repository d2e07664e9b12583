// Streams under faults, against a real redis-server: an entry that takes
// evhost down is the only one dead-lettered as poison; claiming from a dead
// instance goes on while entries are found; trimming costs a few cheap
// commands and spares every group's unhandled entries; an entry unfinished
// at the shutdown deadline is left pending or dead-lettered, never both.
#include "support/evhost_process.h"
#include "support/redis_server.h"
#include "support/temp_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::HasSubstr;

constexpr const char* kStream = "test:jollyjet:events:orders";

std::string faultEvent(const std::string& id, const std::string& type = "ORDER_PLACED") {
  return R"({"eventId":")" + id + R"(","eventType":")" + type +
         R"(","timestamp":"2024-01-15T10:30:00.000Z","payload":{"orderId":")" + id + R"("}})";
}

class StreamFaultsTest : public ::testing::Test {
 protected:
  void TearDown() override { std::remove(fallback_.c_str()); }

  std::string config(const std::string& plugin, const std::string& stream, const std::string& extra = "") const {
    std::ostringstream y;
    y << "environment: test\n"
      << "redis: {host: 127.0.0.1, port: " << redis_.port() << "}\n"
      << "retry: {max_attempts: 1}\n"
      << "dead_letter: {fallback_file: " << fallback_ << "}\n"
      << extra << "plugins:\n  rec: " << plugin << "\n"
      << "channels:\n  jollyjet:events:orders:\n    transport: stream\n    stream: " << stream << "\n"
      << "    routes: [{plugins: [rec]}]\n";
    return y.str();
  }
  std::string xadd(const std::string& message) {
    auto r = redis_.command({"XADD", kStream, "*", "event", message});
    return std::string(r->str, r->len);
  }
  long long pending() {
    auto r = redis_.command({"XPENDING", kStream, "workers"});
    return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
  }
  // eventId -> how often the recorder recorded it.
  std::map<std::string, int> recorded(const std::string& key = "seen") {
    std::map<std::string, int> out;
    auto r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; i < r->elements; ++i) {
      std::string rec(r->element[i]->str, r->element[i]->len);
      size_t a = rec.find('|', rec.find('|') + 1) + 1;
      ++out[rec.substr(a, rec.find('|', a) - a)];
    }
    return out;
  }
  std::vector<std::string> deadLetters() const { return wholeLines(fallback_); }
  long long commandCalls(const std::string& name) {
    auto r = redis_.command({"INFO", "commandstats"});
    const std::string text(r->str, r->len);
    const std::string key = "cmdstat_" + name + ":calls=";
    size_t at = text.find(key);
    return at == std::string::npos ? 0 : std::stoll(text.substr(at + key.size()));
  }

  // What the finish condition of the poison tests looks at, for a failure.
  std::string state() {
    std::ostringstream out;
    out << "pending " << pending() << ", recorded " << recorded().size() << " distinct, dead letters:\n";
    for (const auto& line : deadLetters()) {
      out << "  " << line << "\n";
    }
    return out.str();
  }

  // Runs evhost again each time it dies, as a supervisor would, until
  // `finished` holds (at most `max_runs` starts). A run that neither dies
  // nor finishes ends the supervision (a supervisor would not restart a
  // running process). Returns the deaths; `logs` gets every run's log.
  template <class Done>
  int supervise(const std::string& cfg, Done finished, int max_runs, std::string& logs,
                const std::vector<std::string>& env = {}) {
    int deaths = 0;
    for (int run = 0; run < max_runs; ++run) {
      EvhostProcess host(cfg, {}, env);
      const bool ended = eventually([&] { return !host.running() || finished(); }, std::chrono::seconds(40));
      logs += "--- run " + std::to_string(run) + "\n" + host.log();
      if (!ended) {
        ADD_FAILURE() << "run " << run << " neither died nor finished; " << state() << logs;
        return deaths;
      }
      if (finished()) {
        return deaths;
      }
      ++deaths;
    }
    return deaths;
  }

  // One crashing entry among 50: only it is dead-lettered (as poison, with
  // its eventId and eventType), every other is handled.
  void onlyTheCrashingEntryIsPoison(const std::string& plugin, int max_duplicates,
                                    const std::vector<std::string>& env = {}) {
    for (int i = 0; i < 50; ++i) {
      xadd(faultEvent("e" + std::to_string(i), i == 25 ? "CRASH" : "ORDER_PLACED"));
    }
    const std::string cfg = config(plugin, "{group: workers, consumer: c1, block_ms: 200, max_deliveries: 3}");
    std::string logs;
    const int deaths = supervise(
        cfg, [&] { return pending() == 0 && deadLetters().size() == 1 && recorded().size() == 49; }, 8, logs, env);
    EXPECT_EQ(deaths, 3) << "max_deliveries: 3 crashes, then the entry is dead-lettered\n" << logs;
    const auto letters = deadLetters();
    ASSERT_EQ(letters.size(), 1U) << logs;
    EXPECT_THAT(letters[0], HasSubstr("\"reason\":\"poison\""));
    EXPECT_THAT(letters[0], HasSubstr("\"eventId\":\"e25\",\"eventType\":\"CRASH\""));
    const auto seen = recorded();
    EXPECT_EQ(seen.size(), 49U) << logs;
    EXPECT_EQ(seen.count("e25"), 0U);
    int duplicates = 0;
    for (const auto& [id, n] : seen) {
      duplicates += n - 1;
    }
    EXPECT_LE(duplicates, max_duplicates) << "innocent entries handled again" << logs;
    EXPECT_EQ(pending(), 0);
  }

  RedisServer redis_;
  std::string fallback_ = freshTempFile("evh-faults", ".jsonl");
};

TEST_F(StreamFaultsTest, OneEntryThatKillsAnInlinePluginIsTheOnlyPoison) {
  // Inline: the records of a read's entries go out with the loop's next
  // turn, which a death in the same turn never reaches -- so innocent
  // entries are recorded exactly once.
  onlyTheCrashingEntryIsPoison("{path: recorder, config: {answer: {CRASH: die}}}", 0);
}

TEST_F(StreamFaultsTest, OneEntryThatKillsABlockingPluginIsTheOnlyPoison) {
  // On a worker, an entry may be recorded and die with its ack unsent: at
  // most one such entry per death is handled twice.
  onlyTheCrashingEntryIsPoison("{path: slow_recorder, config: {sleep_ms: 2, answer: {CRASH: die}}}", 3);
}

// The same with a real crash (SIGSEGV in the plugin): each death is
// reported in the crash file of the state directory, naming the plugin and
// the entry -- three reports, then the entry is dead-lettered.
TEST_F(StreamFaultsTest, AnEntryThatCrashesEvhostIsReportedEachTimeThenDeadLettered) {
  const TempDir state;
  onlyTheCrashingEntryIsPoison("{path: recorder, config: {answer: {CRASH: segv}}}", 0,
                               {"EVH_STATE_DIR=" + state.path()});
  const std::string report = readFile(state.path() + "/evhost-crash.log");
  const std::string line =
      "evhost: fatal signal SIGSEGV in plugin \"recorder\" (instance \"rec\") while handling event e25 (type CRASH, "
      "channel jollyjet:events:orders); fault address 0x10\n";
  size_t reports = 0;
  for (size_t at = report.find(line); at != std::string::npos; at = report.find(line, at + 1)) {
    ++reports;
  }
  EXPECT_EQ(reports, 3U) << report;
  EXPECT_THAT(report, HasSubstr("/recorder.so(")) << report;
}

TEST_F(StreamFaultsTest, ADeadInstancesBacklogIsClaimedWhileEntriesAreFound) {
  // 2,500 entries read by a consumer that then died (this test reads them
  // and never acks).
  redis_.command({"XGROUP", "CREATE", kStream, "workers", "0", "MKSTREAM"});
  for (int i = 0; i < 2500; ++i) {
    xadd(faultEvent("e" + std::to_string(i)));
  }
  auto read = redis_.command({"XREADGROUP", "GROUP", "workers", "dead", "COUNT", "2500", "STREAMS", kStream, ">"});
  ASSERT_EQ(pending(), 2500);
  EvhostProcess host(config("{path: recorder}",
                            "{group: workers, consumer: alive, block_ms: 200, claim_idle_ms: 1, "
                            "claim_interval_ms: 60000, count: 100}"));
  // The claim tick runs once a minute: a new instance claims at once, and
  // all of it must go in that round, claiming on while XAUTOCLAIM's cursor
  // finds more.
  ASSERT_TRUE(eventually([&] { return recorded().size() == 2500 && pending() == 0; }, std::chrono::seconds(50)))
      << host.log();
  EXPECT_TRUE(eventually([&] { return host.countInLog("claimed 1000 entries") >= 2; })) << host.log();
  EXPECT_EQ(host.countInLog("claimed 1000 entries"), 2U) << host.log();
  EXPECT_TRUE(host.waitForLog("claimed 500 entries")) << host.log();
  EXPECT_EQ(host.countInLog("claimed 500 entries"), 1U) << host.log();
  for (const auto& [id, n] : recorded()) {
    EXPECT_EQ(n, 1) << id;
  }
  EXPECT_TRUE(deadLetters().empty());
}

TEST_F(StreamFaultsTest, TrimmingCostsAFewCheapCommandsAndSparesEveryGroupsPendingEntries) {
  // Another group read the first 50 entries and handles them slowly (they
  // stay pending there): trimming must keep them, however far over
  // trim_maxlen the stream is.
  redis_.command({"XGROUP", "CREATE", kStream, "other", "0", "MKSTREAM"});
  std::vector<std::string> ids;
  for (int i = 0; i < 3000; ++i) {
    ids.push_back(xadd(faultEvent("e" + std::to_string(i))));
  }
  redis_.command({"XREADGROUP", "GROUP", "other", "o1", "COUNT", "50", "STREAMS", kStream, ">"});
  redis_.command({"XREADGROUP", "GROUP", "other", "o1", "COUNT", "2950", "STREAMS", kStream, ">"});
  redis_.command({"XACK", kStream, "other", ids[0]});  // the other group's oldest pending is ids[1]
  for (int i = 50; i < 3000; ++i) {
    redis_.command({"XACK", kStream, "other", ids[static_cast<size_t>(i)]});
  }
  redis_.command({"CONFIG", "RESETSTAT"});
  EvhostProcess host(config("{path: recorder}",
                            "{group: workers, consumer: c1, block_ms: 200, trim_maxlen: 100, trim_interval_ms: 100}"));
  ASSERT_TRUE(eventually([&] { return recorded().size() == 3000 && pending() == 0; }, std::chrono::seconds(60)))
      << host.log();
  ASSERT_TRUE(eventually([&] { return commandCalls("xtrim") >= 3; })) << host.log();
  // Everything before the other group's oldest pending entry may go (whole
  // nodes of 100); that entry and the rest stay.
  EXPECT_EQ(commandCalls("xrange"), 0) << "trimming must not read the stream";
  auto kept = redis_.command({"XRANGE", kStream, ids[1], ids[1]});
  EXPECT_EQ(kept->elements, 1U) << "an entry pending in another group was trimmed";
  EXPECT_GE(redis_.command({"XLEN", kStream})->integer, 2999);
  // Now the other group finishes: the stream comes down to about 100.
  for (int i = 1; i < 50; ++i) {
    redis_.command({"XACK", kStream, "other", ids[static_cast<size_t>(i)]});
  }
  ASSERT_TRUE(eventually([&] {
    long long len = redis_.command({"XLEN", kStream})->integer;
    return len >= 100 && len < 300;
  })) << host.log();
  EXPECT_EQ(commandCalls("xrevrange"), 0) << "trimming must not read the stream";
  EXPECT_EQ(commandCalls("xrange"), 1) << "trimming must not read the stream (the one XRANGE is this test's)";
}

TEST_F(StreamFaultsTest, EntriesUnfinishedAtTheShutdownDeadlineAreLeftPendingNotDeadLettered) {
  const std::string cfg = config("{path: slow_recorder, config: {sleep_ms: 200}}",
                                 "{group: workers, consumer: c1, block_ms: 200}", "shutdown_timeout_ms: 1000\n");
  for (int i = 0; i < 30; ++i) {
    xadd(faultEvent("e" + std::to_string(i)));
  }
  {
    EvhostProcess host(cfg);
    ASSERT_TRUE(eventually([&] { return recorded().size() >= 2; })) << host.log();
    host.signal(SIGTERM);
    auto code = host.waitExit();
    ASSERT_TRUE(code.has_value()) << host.log();
    EXPECT_EQ(*code, 1) << "the deadline cut work short\n" << host.log();
    EXPECT_THAT(host.log(), HasSubstr("left pending, not dead-lettered")) << host.log();
  }
  EXPECT_TRUE(deadLetters().empty()) << "unfinished stream entries must stay pending, not be dead-lettered";
  const long long left = pending();
  EXPECT_GT(left, 0);
  // (One entry may be both: recorded, its ack cut off by the deadline.)
  EXPECT_GE(static_cast<long long>(recorded().size()) + left, 30) << "every entry handled or pending";
  EvhostProcess again(cfg);
  ASSERT_TRUE(eventually([&] { return pending() == 0 && recorded().size() == 30; }, std::chrono::seconds(40)))
      << again.log();
  EXPECT_TRUE(deadLetters().empty());
}

}  // namespace
}  // namespace evh::test
