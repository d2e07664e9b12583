// The bundled dlq plugin loaded in-process: stores entries in Redis, spools while Redis is down, flushes when back.
#include "dlq_plugin_fixture.h"

namespace evh::test {
namespace {

// Inline: handle() only checks and queues the entry on the loop thread, in
// arrival order; the plugin's own thread stores it (group commit).
TEST_F(DlqPluginTest, DeclaresItselfInline) {
  plugin::Instance& in = load();
  EXPECT_EQ(in.library().name(), "dlq");
  EXPECT_FALSE(in.blocking());
}

TEST_F(DlqPluginTest, StoresEntriesByteExactAtThePrefixedKeyNewestFirst) {
  plugin::Instance& in = load(R"("key":"jollyjet:events:dlq")");
  // Spacing and escapes are the entry's own: stored as given, not re-encoded.
  std::string odd = entry(2, R"("note" : "tab\there" ,)");
  ASSERT_EQ(deadLetter(in, entry(1)), EVH_OK);
  ASSERT_EQ(deadLetter(in, odd), EVH_OK);
  ASSERT_EQ(deadLetter(in, entry(3)), EVH_OK);
  EXPECT_THAT(list(), ElementsAre(entry(3), odd, entry(1)));
  EXPECT_EQ(metricValue(in, "stored"), 3);
  EXPECT_EQ(metricValue(in, "spooled"), 0);
  EXPECT_EQ(metricValue(in, "spool_pending"), 0);
  EXPECT_FALSE(fs::exists(spool_) && fs::file_size(spool_) > 0);
}

TEST_F(DlqPluginTest, UsesTheConfiguredKeyUnderTheEnvironmentPrefix) {
  plugin::Instance& in = load(R"("key":"custom:dead")", "prod:");
  ASSERT_EQ(deadLetter(in, entry(1)), EVH_OK);
  EXPECT_THAT(list("prod:custom:dead"), ElementsAre(entry(1)));
  EXPECT_TRUE(list().empty());
}

TEST_F(DlqPluginTest, KeepsTheNewestMaxLengthEntries) {
  plugin::Instance& in = load(R"("max_length":3)", "test:", true);
  for (int n = 1; n <= 5; ++n) {
    ASSERT_EQ(deadLetter(in, entry(n)), EVH_OK);
  }
  EXPECT_THAT(list(), ElementsAre(entry(5), entry(4), entry(3)));
  // Entries trimmed off are counted and logged (throttled), never silent.
  EXPECT_EQ(metricValue(in, "evicted"), 2);
  EXPECT_EQ(metricValue(in, "list_length"), 3);
  EXPECT_EQ(sink_->count("oldest entr"), 1U) << "one line per 10 s at most";
}

// The list's length follows what others do to it too (a replay takes
// entries off): read again every flush interval.
TEST_F(DlqPluginTest, TheListLengthFollowsRedis) {
  plugin::Instance& in = load(R"("flush_interval_ms":20)");
  for (int n = 1; n <= 4; ++n) {
    ASSERT_EQ(deadLetter(in, entry(n)), EVH_OK);
  }
  EXPECT_EQ(metricValue(in, "list_length"), 4);
  redis_.command({"RPOP", kKey, "3"});  // three replayed (the oldest)
  ASSERT_TRUE(eventually([&] { return metricValue(in, "list_length") == 1; }));
}

TEST_F(DlqPluginTest, RejectsAnEntryThatIsNotAJsonObject) {
  plugin::Instance& in = load();
  std::string error;
  EXPECT_EQ(deadLetter(in, "not json {", error), EVH_REJECT);
  EXPECT_THAT(error, HasSubstr("not a JSON object"));
  EXPECT_EQ(deadLetter(in, "[1,2]", error), EVH_REJECT);
  EXPECT_TRUE(list().empty());
}

TEST_F(DlqPluginTest, SpoolsWhileRedisIsDownThenFlushesInOrder) {
  plugin::Instance& in = load(R"("flush_interval_ms":50)", "test:", true);
  redis_.kill();
  for (int n = 1; n <= 3; ++n) {
    ASSERT_EQ(deadLetter(in, entry(n)), EVH_OK) << "a spooled entry is durable: OK";
  }
  EXPECT_THAT(spoolLines(), ElementsAre(entry(1), entry(2), entry(3)));
  EXPECT_EQ(metricValue(in, "spooled"), 3);
  EXPECT_EQ(metricValue(in, "spool_pending"), 3);
  EXPECT_EQ(metricValue(in, "stored"), 0);
  EXPECT_EQ(sink_->count("cannot store dead-letter entries in Redis"), 1U) << "one warning per outage";

  redis_.restart();
  ASSERT_TRUE(eventually([&] { return list().size() == 3; }));
  EXPECT_THAT(list(), ElementsAre(entry(3), entry(2), entry(1)));
  ASSERT_TRUE(eventually([&] { return metricValue(in, "spool_pending") == 0; }));
  EXPECT_EQ(fs::file_size(spool_), 0U);
  EXPECT_EQ(metricValue(in, "flushed"), 3);
  EXPECT_EQ(sink_->count("Redis answers again"), 1U);

  // Back to direct stores, on top of the flushed ones.
  ASSERT_EQ(deadLetter(in, entry(4)), EVH_OK);
  EXPECT_THAT(list(), ElementsAre(entry(4), entry(3), entry(2), entry(1)));
  EXPECT_EQ(metricValue(in, "stored"), 1);

  // A second outage warns again, once.
  redis_.kill();
  ASSERT_EQ(deadLetter(in, entry(5)), EVH_OK);
  ASSERT_EQ(deadLetter(in, entry(6)), EVH_OK);
  EXPECT_EQ(sink_->count("cannot store dead-letter entries in Redis"), 2U);
}

TEST_F(DlqPluginTest, HandleFlushesOlderSpooledEntriesBeforeItsOwn) {
  std::ofstream(spool_) << entry(1) << "\n" << entry(2) << "\n";
  // The interval is an hour: only the new entry's batch can have pushed them.
  plugin::Instance& in = load(R"("flush_interval_ms":3600000)");
  ASSERT_TRUE(eventually([&] { return metricValue(in, "spool_pending") == 2; }));
  ASSERT_EQ(deadLetter(in, entry(3)), EVH_OK);
  EXPECT_THAT(list(), ElementsAre(entry(3), entry(2), entry(1)));
  EXPECT_EQ(fs::file_size(spool_), 0U);
  EXPECT_EQ(metricValue(in, "flushed"), 2);
  EXPECT_EQ(metricValue(in, "stored"), 1);
}

TEST_F(DlqPluginTest, FlushesWhatAnEarlierRunLeftAndDropsATornLine) {
  // A crash in the middle of an append leaves a fragment; the next append
  // starts on a fresh line.
  std::ofstream(spool_) << entry(1) << "\n"
                        << R"({"id":"dlq-torn","reas)"
                        << "\n"
                        << entry(2) << "\n";
  plugin::Instance& in = load(R"("flush_interval_ms":20)");
  ASSERT_TRUE(eventually([&] { return list().size() == 2; }));
  EXPECT_THAT(list(), ElementsAre(entry(2), entry(1)));
  ASSERT_TRUE(eventually([&] { return fs::file_size(spool_) == 0; }));
  EXPECT_EQ(metricValue(in, "spool_corrupt"), 1);
}

TEST_F(DlqPluginTest, AppendAfterATornLineStartsAFreshLine) {
  plugin::Instance& in = load(R"("flush_interval_ms":3600000)");
  redis_.kill();
  ASSERT_EQ(deadLetter(in, entry(1)), EVH_OK);
  std::ofstream(spool_, std::ios::app) << R"({"id":"dlq-torn)";  // no newline: cut short
  ASSERT_EQ(deadLetter(in, entry(2)), EVH_OK);
  EXPECT_THAT(spoolLines(), ElementsAre(entry(1), R"({"id":"dlq-torn)", entry(2)));
}

TEST_F(DlqPluginTest, AnEntryWithLineBreaksSurvivesTheSpoolByteExact) {
  plugin::Instance& in = load(R"("flush_interval_ms":20)");
  std::string multi = "{\"id\":\"dlq-9\",\n  \"eventId\":\"evt-9\",\r\n  \"reason\":\"invalid\",\"raw\":\"a\\nb\"}";
  redis_.kill();
  ASSERT_EQ(deadLetter(in, multi), EVH_OK);
  EXPECT_EQ(spoolLines().size(), 1U) << "one spool line per entry";
  redis_.restart();
  ASSERT_TRUE(eventually([&] { return list().size() == 1; }));
  EXPECT_THAT(list(), ElementsAre(multi));
}

TEST_F(DlqPluginTest, AnswersRetryWhenTheSpoolCannotBeWrittenEither) {
  plugin::Instance& in = load();
  redis_.kill();
  fs::create_directory(spool_);  // appending to a folder fails, whoever runs the test
  std::string error;
  EXPECT_EQ(deadLetter(in, entry(1), error), EVH_RETRY);
  EXPECT_THAT(error, HasSubstr("dlq: not stored: Redis: LPUSH test:jollyjet:events:dlq: redis unavailable"));
  EXPECT_THAT(error, HasSubstr("spool file " + spool_ + ": open: Is a directory"));
  EXPECT_EQ(metricValue(in, "spooled"), 0);
  EXPECT_EQ(metricValue(in, "not_stored"), 1);
}

TEST_F(DlqPluginTest, ASilentRedisCostsAtMostTheReplyTimeoutAndALateReplyIsHarmless) {
  plugin::Instance& in = load(R"("flush_interval_ms":3600000)", "test:", true);
  services_.hold();
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(deadLetter(in, entry(1)), EVH_OK);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(1900));
  EXPECT_LT(took, std::chrono::milliseconds(5000));
  EXPECT_THAT(spoolLines(), ElementsAre(entry(1)));
  EXPECT_EQ(sink_->count("no reply within 2000 ms"), 1U);
  // The replies arrive after the plugin stopped waiting: nothing to touch.
  services_.release(EVH_ERR_UNAVAILABLE);
}

TEST_F(DlqPluginTest, ShutdownIsPromptWhileTheFlusherWaits) {
  {
    plugin::Instance& in = load(R"("flush_interval_ms":3600000)");
    auto start = std::chrono::steady_clock::now();
    in.shutdown();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500)) << "waiting for the interval";
  }
  registry_.shutdownAll();
  // Waiting for a reply that does not come.
  std::ofstream(spool_) << entry(1) << "\n";
  services_.hold();
  plugin::Instance& in = load(R"("flush_interval_ms":10)");
  ASSERT_TRUE(eventually([&] { return services_.held() > 0; }));
  auto start = std::chrono::steady_clock::now();
  in.shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500)) << "waiting for a reply";
  services_.release(EVH_ERR_CANCELLED);
  EXPECT_THAT(spoolLines(), ElementsAre(entry(1))) << "not pushed: still spooled";
}

// Refused by its validate_config before init runs, every problem named by
// its JSON Pointer at the plugin's line (no YAML here to place it better).
TEST_F(DlqPluginTest, BadConfigIsRefusedBeforeInitWithItsReason) {
  EXPECT_EQ(refusal(R"({"max_length":0})"),
            "deploy.yaml:9: plugin dlq config /max_length: must be an integer from 1 to 100000000, got 0");
  EXPECT_THAT(refusal(R"({"max_length":"10k"})"), HasSubstr("config /max_length: must be an integer"));
  EXPECT_THAT(refusal(R"({"key":""})"), HasSubstr("config /key: must be a non-empty string, got \"\""));
  EXPECT_THAT(refusal(R"({"flush_interval_ms":5})"),
              HasSubstr("config /flush_interval_ms: must be an integer from 10 to 3600000, got 5"));
  EXPECT_THAT(refusal(R"({"max_lenght":5})"), HasSubstr("config /max_lenght: unknown key"));
  EXPECT_THAT(refusal(R"({"spool_file":"/nonexistent-evh-dir/spool.jsonl"})"),
              HasSubstr("config /spool_file: folder \"/nonexistent-evh-dir\" of "
                        "\"/nonexistent-evh-dir/spool.jsonl\": No such file or directory"));
  EXPECT_THAT(refusal(R"([1])"), HasSubstr("plugin dlq config: must be a map, got [1]"));
  // Every problem at once, not the first.
  const std::string both = refusal(R"({"max_length":0,"key":7})");
  EXPECT_THAT(both, HasSubstr("config /max_length: "));
  EXPECT_THAT(both, HasSubstr("config /key: must be a non-empty string, got 7"));
}

// The constructor runs the same parser: what validate_config refuses, init refuses too.
TEST_F(DlqPluginTest, InitRefusesWhatValidateConfigRefuses) {
  evh::ConfigErrors errors;
  dlq::parseSettings(R"({"max_length":0,"bogus":1})", errors);
  ASSERT_EQ(errors.size(), 2U);
  try {
    dlq::parseSettings(R"({"max_length":0,"bogus":1})");
    FAIL() << "expected a refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), errors.summary());
  }
}

}  // namespace
}  // namespace evh::test
