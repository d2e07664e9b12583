// The call handle table: a handle stays safe to use for ever; once its call
// is over, every use answers EVH_ERR_STATE and reaches nothing.
#include "plugin/call_table.h"
#include "plugin/instance.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace evh::plugin {
namespace {

// Counts what reaches it; answers EVH_ERR_STATE after the first completion,
// as the dispatcher's attempt does.
struct CountingTarget final : CallTarget {
  void setError(std::string_view msg) override { error.assign(msg); }
  evh_status complete(evh_status, std::string_view) override { return ++completions == 1 ? EVH_OK : EVH_ERR_STATE; }
  std::string error;
  int completions = 0;  // guarded by the slot's mutex
};

class CallTableTest : public ::testing::Test {
 protected:
  CallTable& table_ = CallTable::process();
  CallOwner& owner_ = table_.join("table_test");
  void TearDown() override { table_.leave(owner_); }
};

TEST_F(CallTableTest, AnOpenCallReachesItsTarget) {
  CountingTarget t;
  CallSlot* slot = nullptr;
  evh_call* call = owner_.open(&t, slot);
  EXPECT_EQ(table_.setError(call, "why"), EVH_OK);
  EXPECT_EQ(t.error, "why");
  EXPECT_EQ(table_.complete(call, EVH_OK, ""), EVH_OK);
  EXPECT_EQ(table_.complete(call, EVH_OK, ""), EVH_ERR_STATE);  // the target says: completed already
  EXPECT_EQ(t.completions, 2);
  owner_.release(*slot);
}

TEST_F(CallTableTest, AStaleGenerationReachesNothingEvenWhenTheSlotServesANewCall) {
  CountingTarget first;
  CallSlot* slot = nullptr;
  evh_call* old_call = owner_.open(&first, slot);
  {
    std::lock_guard<std::mutex> lock(slot->mutex);
    CallOwner::endLocked(*slot, CallEnd::Answered);
  }
  owner_.release(*slot);
  EXPECT_EQ(table_.complete(old_call, EVH_OK, ""), EVH_ERR_STATE);
  EXPECT_EQ(table_.setError(old_call, "late"), EVH_ERR_STATE);

  // The slot is reused (LIFO) for the next call: the old handle still misses.
  CountingTarget second;
  CallSlot* again = nullptr;
  evh_call* new_call = owner_.open(&second, again);
  EXPECT_EQ(again, slot);
  EXPECT_NE(new_call, old_call);
  EXPECT_EQ(table_.complete(old_call, EVH_OK, ""), EVH_ERR_STATE);
  EXPECT_EQ(first.completions, 0);
  EXPECT_EQ(second.completions, 0);
  EXPECT_TRUE(second.error.empty());
  EXPECT_EQ(table_.complete(new_call, EVH_REJECT, ""), EVH_OK);
  EXPECT_EQ(second.completions, 1);
  owner_.release(*again);
  EXPECT_EQ(table_.complete(new_call, EVH_OK, ""), EVH_ERR_STATE);
}

TEST_F(CallTableTest, APointerThatIsNoHandleIsRefused) {
  int not_a_call = 0;
  EXPECT_EQ(table_.complete(reinterpret_cast<evh_call*>(&not_a_call), EVH_OK, ""), EVH_ERR_INVALID);
  EXPECT_EQ(table_.complete(CallTable::encode(0, 0), EVH_OK, ""), EVH_ERR_INVALID);
}

TEST_F(CallTableTest, TheHostApiAnswersErrStateForAStaleCall) {
  CountingTarget t;
  CallSlot* slot = nullptr;
  evh_call* call = owner_.open(&t, slot);
  owner_.release(*slot);  // ends it
  EXPECT_EQ(hostApi().complete(call, EVH_OK, evh_str{}), EVH_ERR_STATE);
  hostApi().call_set_error(call, evh_str{"x", 1});  // void: ignored, logged
  EXPECT_EQ(t.completions, 0);
  EXPECT_TRUE(t.error.empty());
}

// Many threads complete the same calls at once while the owner ends and
// reuses their slots: each call counts exactly one completion, no use of an
// ended call reaches any target (run under ASan/TSan-like stress: no crash).
TEST_F(CallTableTest, ConcurrentCompletesCountOnceAndNeverReachAnEndedCall) {
  constexpr int kCalls = 2000;
  constexpr int kThreads = 4;
  std::vector<CountingTarget> targets(kCalls);
  std::vector<CallSlot*> slots(kCalls);
  std::vector<evh_call*> calls(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    calls[i] = owner_.open(&targets[i], slots[i]);
  }
  std::atomic<int> ok{0};
  std::atomic<int> stale{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      while (!go.load()) {
      }
      for (int i = 0; i < kCalls; ++i) {
        const evh_status s = table_.complete(calls[i], EVH_OK, "");
        (s == EVH_OK ? ok : stale).fetch_add(1);
      }
    });
  }
  go.store(true);
  // Meanwhile the owner ends every call (as the loop does when an outcome is
  // final) and opens new ones in the same slots.
  std::vector<CountingTarget> reused(kCalls);
  std::vector<CallSlot*> reused_slots(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    owner_.release(*slots[i]);
    owner_.open(&reused[i], reused_slots[i]);
  }
  for (auto& th : threads) {
    th.join();
  }
  int completed = 0;  // calls some thread completed while they were open
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_LE(targets[i].completions, kThreads);
    completed += targets[i].completions > 0 ? 1 : 0;
    EXPECT_EQ(reused[i].completions, 0) << "a stale handle reached the slot's next call";
    owner_.release(*reused_slots[i]);
  }
  EXPECT_EQ(ok.load() + stale.load(), kCalls * kThreads);
  EXPECT_EQ(ok.load(), completed);  // one EVH_OK per call at most, the rest EVH_ERR_STATE
}

TEST_F(CallTableTest, AnOwnerOfTheSameNameReusesTheSlotsOfOneThatLeft) {
  CallOwner& other = table_.join("table_test_reuse");
  CountingTarget t;
  CallSlot* slot = nullptr;
  evh_call* call = other.open(&t, slot);
  other.release(*slot);
  table_.leave(other);
  CallOwner& again = table_.join("table_test_reuse");
  EXPECT_EQ(&again, &other);
  CallSlot* reused = nullptr;
  CountingTarget t2;
  again.open(&t2, reused);
  EXPECT_EQ(reused, slot);
  EXPECT_EQ(table_.complete(call, EVH_OK, ""), EVH_ERR_STATE);  // still stale
  EXPECT_EQ(t2.completions, 0);
  again.release(*reused);
  table_.leave(again);
}

}  // namespace
}  // namespace evh::plugin
