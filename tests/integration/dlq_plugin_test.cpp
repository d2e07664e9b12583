// The bundled dlq plugin loaded in-process: stores entries in Redis, spools while Redis is down, flushes when back.
#include "dlq_settings.h"
#include "plugin/registry.h"
#include "redis/reply.h"
#include "support/fake_host.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/waiting_call.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace evh::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

constexpr const char* kKey = "test:jollyjet:events:dlq";

// HostServices whose commands run synchronously against a real redis-server
// and call back on the calling thread (a test double may block; the host
// never does). hold() keeps the callbacks back, as a server that does not
// answer would.
class RedisServices final : public plugin::HostServices {
 public:
  explicit RedisServices(uint16_t port) : port_(port) {}
  ~RedisServices() override { release(EVH_ERR_CANCELLED); }

  evh_status redisCommand(plugin::Instance&, std::vector<std::string> argv, evh_reply_cb cb, void* user_data) override {
    std::unique_lock<std::mutex> lock(mutex_);
    ++commands_;
    if (hold_) {
      if (cb != nullptr) {
        held_.emplace_back(cb, user_data);
      }
      return EVH_OK;
    }
    ReplyPtr reply = run(argv);
    const bool lose = reply && lose_replies_ > 0 && argv.front() == lose_command_;
    if (lose) {
      --lose_replies_;
    }
    lock.unlock();
    if (cb != nullptr) {
      if (!reply || lose) {
        cb(user_data, EVH_ERR_UNAVAILABLE, nullptr);
      } else {
        redis::ReplyView view(reply.get());
        cb(user_data, EVH_OK, view.root());
      }
    }
    return EVH_OK;
  }

  evh_status post(plugin::Instance&, void (*fn)(void*), void* user_data) override {
    fn(user_data);
    return EVH_OK;
  }

  // The next n `command`s run in Redis but their replies are lost, as when
  // the connection drops between Redis's work and its answer.
  void loseReplies(const std::string& command, int n) {
    std::lock_guard<std::mutex> lock(mutex_);
    lose_command_ = command;
    lose_replies_ = n;
  }
  void hold() {
    std::lock_guard<std::mutex> lock(mutex_);
    hold_ = true;
  }
  // Answers every held request with `status` (no reply) and stops holding.
  void release(evh_status status) {
    std::vector<std::pair<evh_reply_cb, void*>> held;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      held.swap(held_);
      hold_ = false;
    }
    for (auto& [cb, ud] : held) {
      cb(ud, status, nullptr);
    }
  }
  size_t commands() {
    std::lock_guard<std::mutex> lock(mutex_);
    return commands_;
  }
  size_t held() {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_.size();
  }

 private:
  ReplyPtr run(const std::vector<std::string>& argv) {
    if (!conn_) {
      conn_.reset(redisConnectWithTimeout("127.0.0.1", port_, timeval{0, 200000}));
      if (!conn_ || conn_->err != 0) {
        conn_.reset();
        return nullptr;
      }
    }
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(conn_.get(), static_cast<int>(argv.size()), ptrs.data(), lens.data())));
    if (!r) {
      conn_.reset();
    }
    return r;
  }

  uint16_t port_;
  std::mutex mutex_;
  RedisConn conn_;
  bool hold_ = false;
  std::string lose_command_;
  int lose_replies_ = 0;
  std::vector<std::pair<evh_reply_cb, void*>> held_;
  size_t commands_ = 0;
};

// Collects what the plugin logs.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  size_t count(const std::string& needle) {
    std::lock_guard<std::mutex> lock(this->mutex_);
    size_t n = 0;
    for (const auto& l : lines_) {
      n += l.find(needle) != std::string::npos ? 1 : 0;
    }
    return n;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

// One entry in the host's format; `extra` lands inside the object verbatim.
std::string entry(int n, const std::string& extra = "") {
  std::string id = std::to_string(n);
  return R"({"id":"dlq-)" + id + R"(","reason":"exhausted","eventId":"evt-)" + id +
         R"(","eventType":"PRODUCT_CREATED","correlationId":"req-)" + id +
         R"(","channel":"jollyjet:events:product","redisChannel":"test:jollyjet:events:product","plugin":"product",)"
         R"("error":{"name":"exhausted","message":"redis down"},"attempts":3,"retryCount":2,)"
         R"("timestamp":"2026-11-26T18:00:03.010Z",)" +
         extra + R"("originalEvent":{"eventId":"evt-)" + id +
         R"(","eventType":"PRODUCT_CREATED","payload":{"name":"caf\u00e9 \u2615 ☕"}}})";
}

class DlqPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/evh-dlq-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    spool_ = dir_ + "/spool.jsonl";
  }
  void TearDown() override {
    registry_.shutdownAll();
    fs::remove_all(dir_);
  }

  // Loads dlq.so as instance "dlq" with `config` merged over a spool file in
  // the test's folder. `capture`: collect its log in sink_ -- only while the
  // spool is empty at load, when the plugin's thread logs nothing until a flush
  // (a logger's sinks cannot be changed while another thread logs).
  plugin::Instance& load(const std::string& extra_config = "",
                         const std::string& prefix = "test:", bool capture = false) {
    std::string json = "{\"spool_file\":\"" + spool_ + "\"" + (extra_config.empty() ? "" : "," + extra_config) + "}";
    config::Plugin p;
    p.name = "dlq";
    p.path = std::string(EVH_BUNDLED_PLUGIN_DIR) + "/dlq.so";
    p.config_json = json;
    p.config_dir = ".";
    p.origin = config::Origin{"deploy.yaml", 9, "plugins.dlq"};
    registry_.load({p}, {}, services_, prefix);
    plugin::Instance* in = registry_.find("dlq");
    if (capture) {
      in->logger().sinks().push_back(sink_);
    }
    return *in;
  }

  std::string refusal(const std::string& config_json) {
    config::Plugin p;
    p.name = "dlq";
    p.path = std::string(EVH_BUNDLED_PLUGIN_DIR) + "/dlq.so";
    p.config_json = config_json;
    p.config_dir = ".";
    p.origin = config::Origin{"deploy.yaml", 9, "plugins.dlq"};
    try {
      registry_.load({p}, {}, services_, "test:");
    } catch (const plugin::LoadError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected config " << config_json << " to be refused";
    return {};
  }

  // Calls handle() as the host does for a dead-lettered event, and gives
  // the call's outcome: the plugin answers EVH_PENDING and completes the
  // call from its thread once the entry is stored (or not). `error`: the
  // outcome's message.
  evh_status deadLetter(plugin::Instance& in, const std::string& text, std::string& error) {
    evh_event ev = makeEvent("DEAD_LETTER", "dlq-x");
    ev.channel = evh_str{"jollyjet:events:dlq", 19};
    ev.redis_channel = evh_str{kKey, std::char_traits<char>::length(kKey)};
    ev.payload = evh_str{text.data(), text.size()};
    ev.envelope = ev.payload;
    ev.raw = ev.payload;
    WaitingCall call;
    const evh_status returned = in.handle(ev, call.handle());
    const WaitingCall::Outcome outcome = call.outcome(returned);
    EXPECT_NE(outcome.status, EVH_PENDING) << "the call was never completed";
    EXPECT_LE(call.completions(), 1) << "completed more than once";
    error = outcome.message;
    return outcome.status;
  }
  evh_status deadLetter(plugin::Instance& in, const std::string& text) {
    std::string error;
    evh_status s = deadLetter(in, text, error);
    EXPECT_EQ(error, "");
    return s;
  }

  std::vector<std::string> list(const std::string& key = kKey) {
    std::vector<std::string> out;
    ReplyPtr r = redis_.command({"LRANGE", key, "0", "-1"});
    for (size_t i = 0; r && i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }

  std::vector<std::string> spoolLines() {
    std::vector<std::string> out;
    std::istringstream in(readFile(spool_));
    for (std::string line; std::getline(in, line);) {
      out.push_back(line);
    }
    return out;
  }

  RedisServer redis_;
  RedisServices services_{redis_.port()};
  std::shared_ptr<CaptureSink> sink_ = std::make_shared<CaptureSink>();
  plugin::Registry registry_;
  std::string dir_;
  std::string spool_;
};

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

// Redis stores an LPUSH but its reply is lost (the connection dropped in
// between): the plugin cannot tell, so it spools the entry -- and before
// pushing it back it asks Redis (LPOS), which has it: stored once, not twice.
// An entry whose push got no reply and that Redis does not have is pushed.
TEST_F(DlqPluginTest, AnEntryStoredJustBeforeItsReplyWasLostIsNotStoredTwice) {
  plugin::Instance& in = load(R"("flush_interval_ms":50)", "test:", true);
  ASSERT_EQ(deadLetter(in, entry(1)), EVH_OK);
  services_.loseReplies("LPUSH", 1);
  ASSERT_EQ(deadLetter(in, entry(2)), EVH_OK) << "spooled: OK";
  EXPECT_EQ(metricValue(in, "spooled"), 1);
  ASSERT_TRUE(eventually([&] { return metricValue(in, "spool_pending") == 0; }));
  EXPECT_THAT(list(), ElementsAre(entry(2), entry(1)));
  EXPECT_EQ(sink_->count("1 spooled dead-letter entry was in " + std::string(kKey) + " already"), 1U);
  EXPECT_EQ(metricValue(in, "flushed"), 0);
  EXPECT_EQ(metricValue(in, "already_stored"), 1);

  // No reply, and Redis did not run it either (the connection dropped
  // before the command went out): asked about, then pushed.
  services_.hold();
  std::thread late([&] {
    eventually([&] { return services_.held() >= 2; });  // the LPUSH and its LTRIM
    services_.release(EVH_ERR_UNAVAILABLE);
  });
  ASSERT_EQ(deadLetter(in, entry(3)), EVH_OK);
  late.join();
  EXPECT_EQ(metricValue(in, "spooled"), 2);
  ASSERT_TRUE(eventually([&] { return metricValue(in, "spool_pending") == 0; }));
  EXPECT_THAT(list(), ElementsAre(entry(3), entry(2), entry(1)));
  EXPECT_EQ(metricValue(in, "flushed"), 1);
}

// A Redis that refuses LPOS (an ACL without +lpos): said once, and the
// uncertain entry is pushed again rather than left in the spool for good --
// at least once, here twice.
TEST_F(DlqPluginTest, WhenRedisRefusesLposTheUncertainEntryIsPushedAgain) {
  plugin::Instance& in = load(R"("flush_interval_ms":50)", "test:", true);
  redis_.command({"ACL", "SETUSER", "default", "-lpos"});
  services_.loseReplies("LPUSH", 1);
  ASSERT_EQ(deadLetter(in, entry(1)), EVH_OK) << "spooled: OK";
  ASSERT_TRUE(eventually([&] { return metricValue(in, "spool_pending") == 0; }));
  EXPECT_THAT(list(), ElementsAre(entry(1), entry(1)));
  EXPECT_EQ(sink_->count("LPOS " + std::string(kKey) + " failed: NOPERM"), 1U);
  EXPECT_EQ(metricValue(in, "flushed"), 1);
  EXPECT_EQ(metricValue(in, "already_stored"), 0);
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
