// The dlq plugin's group commit, in-process and step by step: the test holds
// each Redis request and answers it when it chooses (FakeServices with
// `accept`), so what shares a push or an fsync, and when each call is
// answered, is exact. The same with the real evhost and redis-server:
// dlq_group_commit_test.cpp.
#include "plugin/registry.h"
#include "support/fake_host.h"
#include "support/redis_server.h"
#include "support/temp_file.h"
#include "support/waiting_call.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace evh::test {
namespace {

constexpr const char* kBatchKey = "test:jollyjet:events:dlq";
constexpr int kEntries = 50;

std::string batchEntry(int n) {
  const std::string id = std::to_string(n);
  return R"({"id":"dlq-)" + id + R"(","reason":"exhausted","eventId":"evt-)" + id +
         R"(","originalEvent":{"eventId":"evt-)" + id + R"("}})";
}

// Entries from..to-1, oldest first.
std::vector<std::string> entries(int from, int to) {
  std::vector<std::string> out;
  for (int n = from; n < to; ++n) {
    out.push_back(batchEntry(n));
  }
  return out;
}

class DlqBatchTest : public ::testing::Test {
 protected:
  DlqBatchTest() { services_.accept = true; }
  ~DlqBatchTest() override { registry_.shutdownAll(); }

  plugin::Instance& load() {
    config::Plugin p;
    p.name = "dlq";
    p.path = std::string(EVH_BUNDLED_PLUGIN_DIR) + "/dlq.so";
    p.config_json = R"({"flush_interval_ms":3600000,"spool_file":")" + spool() + "\"}";
    p.config_dir = ".";
    p.origin = config::Origin{"deploy.yaml", 9, "plugins.dlq"};
    registry_.load({p}, {}, services_, "test:");
    return *registry_.find("dlq");
  }
  std::string spool() const { return dir_.path() + "/spool.jsonl"; }

  // Hands entries from..to-1 to handle(), as the host does on its loop:
  // one call after the other, without waiting for their outcomes.
  void deadLetter(plugin::Instance& in, int from, int to) {
    for (int n = from; n < to; ++n) {
      texts_.push_back(std::make_unique<std::string>(batchEntry(n)));
      calls_.push_back(std::make_unique<WaitingCall>());
      evh_event ev = makeEvent("DEAD_LETTER", "dlq-x");
      ev.payload = evh_str{texts_.back()->data(), texts_.back()->size()};
      ev.envelope = ev.payload;
      ev.raw = ev.payload;
      returned_.push_back(in.handle(ev, calls_.back()->handle()));
      EXPECT_EQ(returned_.back(), EVH_PENDING);
    }
  }
  // How many calls have an outcome so far.
  int answered() {
    int n = 0;
    for (const auto& c : calls_) {
      n += c->completions();
    }
    return n;
  }
  // The outcome of entry n's call (waiting for it).
  evh_status outcome(int n) {
    const size_t i = static_cast<size_t>(n - 1);
    return calls_[i]->outcome(returned_[i]).status;
  }

  // The plugin's requests so far (waiting until there are at least `n`).
  std::vector<std::vector<std::string>> commands(size_t n) {
    EXPECT_TRUE(eventually([&] {
      std::lock_guard<std::mutex> lock(services_.mutex);
      return services_.commands.size() >= n;
    })) << "the plugin sent fewer than "
        << n << " commands";
    std::lock_guard<std::mutex> lock(services_.mutex);
    return services_.commands;
  }
  // Answers request i: an integer, a status or an error reply.
  void answer(size_t i, evh_reply_type type, int64_t integer = 0, const char* text = "") {
    std::pair<evh_reply_cb, void*> cb;
    {
      std::lock_guard<std::mutex> lock(services_.mutex);
      ASSERT_LT(i, services_.callbacks.size());
      cb = services_.callbacks[i];
    }
    evh_reply r{};
    r.struct_size = sizeof(r);
    r.type = type;
    r.integer = integer;
    r.str = evh_str{text, std::strlen(text)};
    cb.first(cb.second, EVH_OK, &r);
  }
  // Answers the LPUSH + LTRIM pair starting at request i as Redis would.
  void stored(size_t i, int64_t length) {
    answer(i, EVH_REPLY_INTEGER, length);
    answer(i + 1, EVH_REPLY_STATUS, 0, "OK");
  }

  TempDir dir_;
  FakeServices services_;
  plugin::Registry registry_;
  std::vector<std::unique_ptr<std::string>> texts_;
  std::vector<std::unique_ptr<WaitingCall>> calls_;
  std::vector<evh_status> returned_;  // handle()'s answers; calls_[n - 1] is entry n's
};

std::vector<std::string> lpush(const std::vector<std::string>& oldest_first) {
  std::vector<std::string> argv{"LPUSH", kBatchKey};
  argv.insert(argv.end(), oldest_first.begin(), oldest_first.end());
  return argv;
}

// Entries that arrive while a push waits for Redis go together in the next
// one -- one LPUSH holding all of them, oldest first (so the list stays
// newest first) -- and each call is answered only once its LPUSH is.
TEST_F(DlqBatchTest, EntriesQueuedDuringAPushShareTheNextInArrivalOrder) {
  plugin::Instance& in = load();
  deadLetter(in, 1, 2);
  ASSERT_EQ(commands(2)[0], lpush({batchEntry(1)}));
  deadLetter(in, 2, kEntries + 1);  // while entry 1's push waits
  EXPECT_EQ(answered(), 0);
  stored(0, 1);
  EXPECT_EQ(outcome(1), EVH_OK);
  const auto sent = commands(4);
  ASSERT_EQ(sent.size(), 4U) << "one push for the entries that queued meanwhile";
  EXPECT_EQ(sent[2], lpush(entries(2, kEntries + 1)));
  EXPECT_EQ(sent[3], (std::vector<std::string>{"LTRIM", kBatchKey, "0", "9999"}));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(answered(), 1) << "answered before Redis took their entries";
  stored(2, kEntries);
  for (int n = 2; n <= kEntries; ++n) {
    EXPECT_EQ(outcome(n), EVH_OK) << n;
  }
  EXPECT_EQ(answered(), kEntries) << "each call exactly once";
  EXPECT_EQ(metricValue(in, "stored"), kEntries);
  EXPECT_EQ(metricValue(in, "pushes"), 2);
  EXPECT_EQ(metricValue(in, "spool_appends"), 0);
}

// Redis refuses the push (an error reply): the batch goes to the spool with
// one write and one fsync, and so does every batch after it while Redis is
// down -- without asking Redis again for each.
TEST_F(DlqBatchTest, ABatchRedisRefusesIsSpooledWithOneFsync) {
  plugin::Instance& in = load();
  deadLetter(in, 1, 2);
  ASSERT_EQ(commands(2).size(), 2U);
  deadLetter(in, 2, kEntries + 1);
  answer(0, EVH_REPLY_ERROR, 0, "WRONGTYPE Operation against a key holding the wrong kind of value");
  answer(1, EVH_REPLY_ERROR, 0, "WRONGTYPE Operation against a key holding the wrong kind of value");
  for (int n = 1; n <= kEntries; ++n) {
    EXPECT_EQ(outcome(n), EVH_OK) << n;
  }
  EXPECT_EQ(answered(), kEntries);
  EXPECT_EQ(wholeLines(spool()), entries(1, kEntries + 1));
  EXPECT_EQ(metricValue(in, "spooled"), kEntries);
  EXPECT_EQ(metricValue(in, "spool_appends"), 2) << "entry 1's, then one for the 49 that queued meanwhile";
  EXPECT_EQ(metricValue(in, "spool_pending"), kEntries);
  EXPECT_EQ(commands(2).size(), 2U) << "during the outage the batch went straight to the spool";
}

// At shutdown -- which the host begins once every call is answered or given
// up on -- the plugin's thread still answers every call it holds, exactly
// once, and keeps their entries, in order, in the spool.
TEST_F(DlqBatchTest, ShutdownAnswersEveryQueuedCallOnceAndSpoolsItsEntry) {
  plugin::Instance& in = load();
  deadLetter(in, 1, 2);
  ASSERT_EQ(commands(2).size(), 2U);
  deadLetter(in, 2, 11);
  const auto start = std::chrono::steady_clock::now();
  registry_.shutdownAll();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000)) << "waited for the reply";
  EXPECT_EQ(answered(), 10);
  for (int n = 1; n <= 10; ++n) {
    EXPECT_EQ(outcome(n), EVH_OK) << n;
  }
  EXPECT_EQ(wholeLines(spool()), entries(1, 11));
  // The replies that come after all touch nothing freed.
  stored(0, 1);
}

}  // namespace
}  // namespace evh::test
