// Generation-checked call handles: the evh_call* a plugin is given stays safe
// to pass back for ever.
//
// A plugin may keep its evh_call* after the call is over -- complete() twice,
// complete() after handle() answered OK, a completion arriving after the
// call's timeout_ms or the shutdown deadline. The handle is therefore not the
// address of anything that is freed: it encodes a slot index and that slot's
// generation. Slots are never freed, and each use of a slot for a new call
// bumps its generation, so an old handle finds its slot, sees another
// generation, and answers EVH_ERR_STATE -- naming the plugin, since a slot
// only ever serves the calls of one plugin (its CallOwner).
#pragma once

#include "common/throttle.h"

#include <evh/plugin.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace evh::plugin {

// Why a call stopped being open: said in the log line about a later use.
enum class CallEnd : uint8_t {
  Answered,   // handle() answered OK, RETRY or REJECT (not PENDING)
  Completed,  // complete() was accepted
  TimedOut,   // its timeout_ms gave up on it
  Abandoned,  // the shutdown deadline, or the dispatcher's end
  Refused,    // never started (its plugin's calls were refused)
};
const char* callEndText(CallEnd end) noexcept;

// The host side of an open call. CallTable calls it only while the call is
// open, with its slot's mutex held (so it may not end under the call).
class CallTarget {
 public:
  // api->call_set_error. THREAD: the one running handle(), normally.
  virtual void setError(std::string_view msg) = 0;
  // api->complete with a valid status. Answers EVH_ERR_STATE when the call
  // was completed already. THREAD: any.
  virtual evh_status complete(evh_status status, std::string_view msg) = 0;

 protected:
  ~CallTarget() = default;
};

class CallOwner;

// One place in the table; never freed, never moved.
struct CallSlot {
  // Guards what follows -- and the target's call state, which its owner
  // keeps under this same mutex (one lock per call, not two).
  std::mutex mutex;
  uint64_t generation = 1;               // the open call's, or the next one's; written by the owner's thread only
  CallTarget* target = nullptr;          // the open call's target; null between calls
  CallEnd last_end = CallEnd::Answered;  // why call `generation - 1` ended
  CallOwner* owner = nullptr;            // fixed at creation
  uint32_t index = 0;                    // fixed at creation
};

// One plugin's calls (one per plugin per dispatcher): the slots it has used,
// kept for its next calls. Opening and ending calls is for one thread, the
// loop; uses of stale handles come from any.
class CallOwner {
 public:
  const std::string& name() const noexcept { return name_; }

  // A new call for target: its handle, and the slot whose mutex guards the
  // call from now on. THREAD: the owner's. Throws std::bad_alloc (or
  // std::length_error when 2^24 calls are open at once).
  evh_call* open(CallTarget* target, CallSlot*& slot);
  // Ends the open call: from now on its handle answers EVH_ERR_STATE. Call
  // with slot.mutex held. THREAD: the owner's.
  static void endLocked(CallSlot& slot, CallEnd why) noexcept;
  // Ends the call if it is still open, and takes the slot back for a later
  // call. THREAD: the owner's.
  void release(CallSlot& slot) noexcept;

  // A stale handle was used: one log line per minute at most. THREAD: any.
  void noteStale(const char* what, const char* why) noexcept;

 private:
  friend class CallTable;
  explicit CallOwner(std::string name) : name_(std::move(name)) {}

  std::string name_;
  std::vector<CallSlot*> free_;  // slots of ended calls (owner's thread)
  size_t owned_ = 0;             // slots made for this owner (under the table's mutex)
  std::mutex log_mutex_;         // guards throttle_
  Throttle throttle_{60000};
};

// The process's one table of call slots. It lives until the process ends:
// a plugin thread may use a handle as late as it likes.
class CallTable {
 public:
  static CallTable& process();

  // An owner for the calls of plugin `name` (a retired one of that name if
  // there is one: its slots are reused). THREAD: any.
  CallOwner& join(const std::string& name);
  // The owner's calls are all released: keep it for a later join(). THREAD: any.
  void leave(CallOwner& owner);

  // What the host API's complete() and call_set_error() do: act on the
  // call if it is open; else EVH_ERR_STATE (logged, naming the plugin).
  // EVH_ERR_INVALID for a pointer that is no handle at all. THREAD: any.
  evh_status complete(evh_call* call, evh_status status, std::string_view msg);
  evh_status setError(evh_call* call, std::string_view msg);

  // Handle <-> (index, generation). 24 bits of index, 40 of generation.
  static constexpr unsigned kIndexBits = 24;
  static constexpr uint64_t kMaxGeneration = (uint64_t{1} << (64 - kIndexBits)) - 1;
  static evh_call* encode(uint32_t index, uint64_t generation) noexcept;

 private:
  CallTable();
  friend class CallOwner;
  CallSlot* newSlot(CallOwner& owner);
  CallSlot* find(evh_call* call, uint64_t& generation) const noexcept;
  template <class Act>
  evh_status use(evh_call* call, const char* what, Act act);

  static constexpr unsigned kChunkBits = 12;  // 4,096 slots a chunk
  static constexpr size_t kChunks = size_t{1} << (kIndexBits - kChunkBits);

  std::mutex mutex_;  // guards owners_, idle_, and the growth of the slots
  std::unique_ptr<std::atomic<CallSlot*>[]> chunks_;
  std::atomic<uint32_t> size_{0};  // slots made (published with release)
  std::vector<std::unique_ptr<CallOwner>> owners_;
  std::vector<CallOwner*> idle_;
};

}  // namespace evh::plugin
