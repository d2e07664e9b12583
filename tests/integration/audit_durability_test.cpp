// The audit plugin's durability: each fsync mode (group commit), SIGKILL
// losing no acknowledged line, a torn last line, a file moved away and
// failed writes retried until they work.
#include "audit_fixture.h"

namespace evh::test {
namespace {

// --------------------------------------------------------------------------
// Durability

class AuditFsyncTest : public AuditTest, public ::testing::WithParamInterface<std::string> {};

// Each mode writes every line; the closing summary shows what it fsync'd:
// always -- once per batch of lines (group commit: lines queued while an
// fsync runs share the next one); never -- not at all; interval -- in the
// background (no event needed to trigger it), far fewer times than lines.
TEST_P(AuditFsyncTest, WritesEveryLineAndFsyncsAsTheModeSays) {
  const std::string mode = GetParam();
  constexpr int kEvents = 20;
  EvhostProcess host(config(", config: {fsync: " + mode + ", fsync_interval_ms: 100}"), {"--log-level", "debug"});
  waitSubscribed(host);
  EXPECT_THAT(host.log(), HasSubstr("(fsync: " + mode + (mode == "interval" ? " every 100 ms" : "") + ";"));
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] { return hasLines(file(host), kEvents); })) << host.log();
  if (mode == "interval") {
    // The flusher thread syncs the tail on its own once events stop.
    ASSERT_TRUE(host.waitForLog("audit lines of audit.jsonl (fsync: interval)")) << host.log();
  }
  std::vector<json> lines = parseAll(readLines(file(host)).lines);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(lines[static_cast<size_t>(i)]["eventId"], "evt-" + pad(i));
  }
  stop(host);
  auto s = summary(host.log());
  EXPECT_EQ(s["lines"], kEvents) << host.log();
  if (mode == "always") {
    std::smatch m;
    const std::string log = host.log();
    ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(batches=(\d+))"))) << log;
    EXPECT_EQ(s["fsyncs"], std::stoll(m[1].str())) << "one fsync per batch";
    EXPECT_GE(s["fsyncs"], 1);
    EXPECT_LE(s["fsyncs"], kEvents);
  } else if (mode == "never") {
    EXPECT_EQ(s["fsyncs"], 0);
  } else {
    EXPECT_GE(s["fsyncs"], 1);
    EXPECT_LE(s["fsyncs"], kEvents);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, AuditFsyncTest, ::testing::Values("always", "interval", "never"));

TEST_F(AuditTest, IntervalModeDoesNotFsyncPerLineButAtShutdown) {
  constexpr int kEvents = 20;
  EvhostProcess host(config(", config: {fsync: interval, fsync_interval_ms: 3600000}"));
  waitSubscribed(host);
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] { return hasLines(file(host), kEvents); })) << host.log();
  stop(host);
  auto s = summary(host.log());
  EXPECT_EQ(s["lines"], kEvents) << host.log();
  EXPECT_EQ(s["fsyncs"], 1) << "one fsync, at the graceful stop";
}

// The acknowledgement is the contract: an event is answered OK only after
// its line is written (and, with fsync always, fsync'd: its batch's fsync). Killed with SIGKILL
// right after, evhost must not have lost any acknowledged line. (A process
// crash loses nothing in any mode -- written data is in the kernel's page
// cache; the modes differ only for an OS crash or power loss, which a test
// cannot stage.)
TEST_P(AuditFsyncTest, SigkillLosesNoAcknowledgedLine) {
  constexpr int kEvents = 40;
  EvhostProcess host(config(", config: {fsync: " + GetParam() + "}"), {}, {"DEBUG_EVENTS=true"});
  waitSubscribed(host);
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] { return host.countInLog("plugin=audit attempt=1 status=ok") == kEvents; })) << host.log();
  host.signal(SIGKILL);
  ASSERT_EQ(host.waitExit(), std::optional<int>(128 + SIGKILL));

  std::set<std::string> acknowledged;
  std::istringstream log(host.log());
  static const std::regex done(R"(stage=done eventId=(\S+) .*plugin=audit attempt=\d+ status=ok)");
  for (std::string line; std::getline(log, line);) {
    std::smatch m;
    if (std::regex_search(line, m, done)) {
      acknowledged.insert(m[1].str());
    }
  }
  ASSERT_EQ(acknowledged.size(), static_cast<size_t>(kEvents));
  FileLines f = readLines(file(host));
  EXPECT_TRUE(f.complete);
  std::set<std::string> in_file;
  for (const json& l : parseAll(f.lines)) {
    in_file.insert(l["eventId"].get<std::string>());
  }
  EXPECT_EQ(in_file, acknowledged);
}

// Killed in the middle of a burst, with the stream as the witness: the
// plugin XADDs a line only after it is in the file and fsync'd, so every
// line visible in the stream must be in the file, complete and identical.
// Only a last line of an event not yet acknowledged may be cut short.
TEST_F(AuditTest, SigkillMidBurstKeepsEveryLineTheStreamHasSeen) {
  constexpr int kEvents = 300;
  EvhostProcess host(config(", config: {fsync: always, stream: {key: jollyjet:audit}}"));
  waitSubscribed(host);
  for (int i = 0; i < kEvents; ++i) {
    publish(kActivityChannel, userActivity(i));
  }
  ASSERT_TRUE(eventually([&] {
    return redis_->command({"XLEN", "test:jollyjet:audit"})->integer >= 30;
  })) << host.log();
  host.signal(SIGKILL);
  ASSERT_EQ(host.waitExit(), std::optional<int>(128 + SIGKILL));

  std::vector<std::string> streamed;
  auto r = redis_->command({"XRANGE", "test:jollyjet:audit", "-", "+"});
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* fields = r->element[i]->element[1];
    ASSERT_EQ(fields->elements, 2U);
    EXPECT_EQ(std::string(fields->element[0]->str), "data");
    streamed.emplace_back(fields->element[1]->str, fields->element[1]->len);
  }
  ASSERT_GE(streamed.size(), 30U);
  FileLines f = readLines(file(host));
  std::vector<std::string> whole = f.lines;
  if (!f.complete) {
    whole.pop_back();  // cut short by the kill: its event was never acknowledged
    EXPECT_EQ(std::find(streamed.begin(), streamed.end(), f.lines.back()), streamed.end());
  }
  std::vector<json> parsed = parseAll(whole);
  ASSERT_GE(whole.size(), streamed.size());
  for (size_t i = 0; i < streamed.size(); ++i) {
    EXPECT_EQ(whole[i], streamed[i]) << "stream entry " << i << " differs from file line " << i;
  }
  for (size_t i = 0; i < parsed.size(); ++i) {
    EXPECT_EQ(parsed[i]["eventId"], "evt-" + pad(static_cast<int>(i)));
  }
}

// A torn last line left by an earlier crash (power loss mid-write) is ended
// with a newline, so new lines stay lines of their own. Also: an absolute
// "file" path.
TEST_F(AuditTest, ATornLastLineFromAnEarlierCrashIsEndedBeforeNewLines) {
  const std::string path = dir_ + "/audit.jsonl";
  std::ofstream(path) << R"({"timestamp":"2024-01-15T10:29:59.000Z","eventId":"e)";
  EvhostProcess host(config(", config: {file: " + path + "}"));
  waitSubscribed(host);
  publish(kActivityChannel, userActivity(1));
  ASSERT_TRUE(eventually([&] { return hasLines(path, 2); })) << host.log();
  FileLines f = readLines(path);
  ASSERT_EQ(f.lines.size(), 2U);
  EXPECT_TRUE(f.complete);
  EXPECT_EQ(f.lines[0], R"({"timestamp":"2024-01-15T10:29:59.000Z","eventId":"e)");
  EXPECT_EQ(json::parse(f.lines[1])["eventId"], "evt-001");
}

// --------------------------------------------------------------------------
// Failures of the file

TEST_F(AuditTest, AFileMovedAwayIsReopenedAndAFailedWriteIsRetriedUntilItWorks) {
  EvhostProcess host(config(", config: {fsync: always}",
                            "retry: {max_attempts: 10, base_delay_ms: 200, multiplier: 1, jitter: none}\n"));
  waitSubscribed(host);
  const std::string path = file(host);
  publish(kActivityChannel, userActivity(0));
  ASSERT_TRUE(eventually([&] { return hasLines(path, 1); })) << host.log();

  // An external log rotation (mv, no copytruncate): the next line goes to a
  // new file at the configured path.
  std::filesystem::rename(path, path + ".old");
  publish(kActivityChannel, userActivity(1));
  ASSERT_TRUE(host.waitForLog("audit file audit.jsonl was moved, removed or replaced by someone else")) << host.log();
  EXPECT_EQ(readLines(path).lines.size(), 1U);
  EXPECT_EQ(readLines(path + ".old").lines.size(), 1U);

  // The path becomes unwritable (a folder in the way): RETRY with the reason,
  // and once it is writable again the line is written -- once.
  std::filesystem::remove(path);
  std::filesystem::create_directory(path);
  publish(kActivityChannel, userActivity(2));
  ASSERT_TRUE(host.waitForLog("cannot open audit file \"audit.jsonl\": Is a directory; retrying in 200 ms"))
      << host.log();
  std::filesystem::remove(path);
  ASSERT_TRUE(eventually([&] { return hasLines(path, 1); })) << host.log();
  publish(kActivityChannel, userActivity(3));
  ASSERT_TRUE(eventually([&] { return hasLines(path, 2); })) << host.log();
  std::vector<json> lines = parseAll(readLines(path).lines);
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(lines[0]["eventId"], "evt-002");
  EXPECT_EQ(lines[1]["eventId"], "evt-003");
  stop(host);
  auto s = summary(host.log());
  EXPECT_EQ(s["lines"], 4);
  EXPECT_GE(s["write_errors"], 1);
}

}  // namespace
}  // namespace evh::test
