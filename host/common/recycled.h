// Recycled<T>: memory reuse for small objects made and freed once per event.
//
// Deriving T from Recycled<T> gives T a class-specific operator new/delete
// backed by a thread-local free list: a freed block is kept (up to kKeep of
// them) and handed out again by the next new on that thread. At steady state
// the per-event bookkeeping (an in-flight event, a delivery, an attempt)
// then costs no malloc/free at all -- glibc's own per-thread cache keeps only
// 7 blocks per size, far fewer than the 1,000 entries one stream read brings.
//
// Objects may be freed on any thread (the block joins that thread's list).
// Under AddressSanitizer recycling is off, so a use after free still shows.
#pragma once

#include <cstddef>
#include <new>

namespace evh {

#if defined(__SANITIZE_ADDRESS__)
#define EVH_RECYCLE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EVH_RECYCLE 0
#endif
#endif
#ifndef EVH_RECYCLE
#define EVH_RECYCLE 1
#endif

template <class T, size_t kKeep = 4096>
class Recycled {
 public:
  static void* operator new(size_t size) {
#if EVH_RECYCLE
    FreeList& list = freeList();
    if (size == sizeof(T) && list.head != nullptr) {
      Block* b = list.head;
      list.head = b->next;
      --list.count;
      return b;
    }
#endif
    return ::operator new(size < sizeof(Block) ? sizeof(Block) : size);
  }

  static void operator delete(void* p, size_t size) noexcept {
    if (p == nullptr) {
      return;
    }
#if EVH_RECYCLE
    FreeList& list = freeList();
    if (size == sizeof(T) && list.count < kKeep) {
      auto* b = static_cast<Block*>(p);
      b->next = list.head;
      list.head = b;
      ++list.count;
      return;
    }
#endif
    (void)size;
    ::operator delete(p);
  }

 private:
  struct Block {
    Block* next;
  };
  struct FreeList {
    Block* head = nullptr;
    size_t count = 0;
    FreeList() = default;
    FreeList(const FreeList&) = delete;
    FreeList& operator=(const FreeList&) = delete;
    ~FreeList() {
      while (head != nullptr) {
        Block* b = head;
        head = b->next;
        ::operator delete(b);
      }
      count = kKeep;  // a late delete on this thread (static destructors) frees directly
    }
  };
  static FreeList& freeList() {
    thread_local FreeList list;
    return list;
  }
};

}  // namespace evh
