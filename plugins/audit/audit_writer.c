/* audit_writer: the queue and the writer thread (see audit_writer.h).
 *
 * Two batches take turns: handle() fills `queued` under queue_lock; the
 * writer swaps it with its own, empty `batch` (keeping both one's memory)
 * and works on that without the lock, so handle() never waits for the disk,
 * only for a swap of a few pointers. */
#define _POSIX_C_SOURCE 200809L

#include "audit_writer.h"

#include "audit_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the writer does with an item besides writing it. */
enum {
  AUDIT_SKIP_NONE = 0,    /* written */
  AUDIT_SKIP_SEEN = 1,    /* redelivered, its line written before: answered OK, not written again */
  AUDIT_SKIP_IN_BATCH = 2 /* redelivered while an earlier item of the batch has its eventId: shares its fate */
};

/* The queue-full warning: at most one every this many ms. */
#define AUDIT_QUEUE_FULL_LOG_MS 10000

static uint64_t audit_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void audit_batch_free(audit_batch* b) {
  audit_buf_free(&b->lines);
  audit_buf_free(&b->ids);
  free(b->items);
  memset(b, 0, sizeof(*b));
}

/* A batch's memory is kept for the next one, up to this much: the memory a
 * burst took is given back once it has been written. */
#define AUDIT_BATCH_KEEP_BYTES ((size_t)4 << 20)

static void audit_batch_reset(audit_batch* b) {
  if (b->lines.cap > AUDIT_BATCH_KEEP_BYTES || b->cap * sizeof(audit_item) > AUDIT_BATCH_KEEP_BYTES) {
    audit_batch_free(b);
    return;
  }
  audit_buf_reset(&b->lines);
  audit_buf_reset(&b->ids);
  b->count = 0;
}

/* ---- handle()'s side ---------------------------------------------------------- */

static evh_status audit_refuse(audit* a, evh_call* call, size_t lines, size_t bytes) {
  char msg[200];
  uint64_t now = audit_mono_ms();
  a->api->metric_add(a->m_queue_full, 1);
  if (lines == 0) {
    snprintf(msg, sizeof msg, "out of memory queueing the audit line");
  } else {
    snprintf(msg, sizeof msg, "audit queue full: %zu lines (%zu bytes) wait for the disk", lines, bytes);
    if (a->queue_full_logged_ms == 0 || now - a->queue_full_logged_ms >= AUDIT_QUEUE_FULL_LOG_MS) {
      a->queue_full_logged_ms = now;
      audit_log(a, EVH_LOG_WARN, "%s (%s): events are answered RETRY until it drains. Logged at most every %d s", msg,
                a->cfg.file, AUDIT_QUEUE_FULL_LOG_MS / 1000);
    }
  }
  a->api->call_set_error(call, audit_str(msg));
  return EVH_RETRY;
}

evh_status audit_enqueue(audit* a, const evh_event* ev, evh_call* call) {
  audit_batch* q = &a->queued;
  audit_item* item;
  size_t lines_len;
  size_t ids_len;
  int wake;
  pthread_mutex_lock(&a->queue_lock);
  if (q->count > 0 && (q->count >= AUDIT_QUEUE_MAX_LINES || q->lines.len + a->line.len > AUDIT_QUEUE_MAX_BYTES)) {
    size_t n = q->count;
    size_t bytes = q->lines.len;
    pthread_mutex_unlock(&a->queue_lock);
    return audit_refuse(a, call, n, bytes);
  }
  if (q->count == q->cap) {
    size_t cap = q->cap > 0 ? q->cap * 2 : 64;
    audit_item* grown = (audit_item*)realloc(q->items, cap * sizeof(audit_item));
    if (grown == NULL) {
      pthread_mutex_unlock(&a->queue_lock);
      return audit_refuse(a, call, 0, 0);
    }
    q->items = grown;
    q->cap = cap;
  }
  lines_len = q->lines.len;
  ids_len = q->ids.len;
  audit_buf_append(&q->lines, a->line.data, a->line.len);
  audit_buf_append(&q->ids, ev->event_id.ptr, ev->event_id.len);
  if (q->lines.failed || q->ids.failed) {
    /* Back to what it held: the lines before are whole and still queued. */
    q->lines.len = lines_len;
    q->ids.len = ids_len;
    q->lines.failed = q->ids.failed = 0;
    pthread_mutex_unlock(&a->queue_lock);
    return audit_refuse(a, call, 0, 0);
  }
  item = &q->items[q->count++];
  memset(item, 0, sizeof(*item));
  item->call = call;
  item->line_len = a->line.len;
  item->id_off = ids_len;
  item->id_len = ev->event_id.len;
  item->redacted = (uint32_t)a->copier.redacted;
  item->redelivered = (ev->flags & EVH_EVENT_REDELIVERED) != 0;
  wake = q->count == 1; /* the writer sleeps only on an empty queue */
  if (wake) {
    pthread_cond_signal(&a->queue_wake);
  }
  pthread_mutex_unlock(&a->queue_lock);
  return EVH_PENDING;
}

/* ---- the writer thread ---------------------------------------------------------- */

/* Reads the eventIds of the file's newest lines into the window, before the
 * first batch: here, not in init(), which runs on evhost's loop thread. A
 * failure costs only the protection, never an event. */
static void audit_load_seen(audit* a) {
  char err[512];
  size_t loaded = 0;
  int truncated = 0;
  if (a->cfg.dedup_window == 0) {
    return;
  }
  if (audit_seen_load(&a->seen, a->cfg.file, &loaded, &truncated, err, sizeof err) != 0) {
    audit_log(a, EVH_LOG_WARN, "%s: %zu eventIds remembered; a redelivered event older than them may get a second line",
              err, loaded);
  } else if (truncated) {
    audit_log(a, EVH_LOG_WARN,
              "read %zu MiB of %s without finding %lld lines: %zu eventIds remembered against redeliveries",
              AUDIT_SEEN_MAX_LOAD_BYTES >> 20, a->cfg.file, (long long)a->cfg.dedup_window, loaded);
  } else {
    audit_log(a, EVH_LOG_INFO, "remembered the eventIds of the last %zu lines of %s against redeliveries", loaded,
              a->cfg.file);
  }
}

/* FNV-1a over an eventId: the in-batch table's hash. */
static uint64_t audit_id_hash(const char* s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  size_t i;
  for (i = 0; i < n; ++i) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* The earlier item of this batch with `it`'s eventId, or (size_t)-1. With
 * `slots` (an open-addressing table of item index + 1, 0 empty) it is one
 * probe sequence, and `it` is added when it is the first with its id; without
 * (no memory for the table) a scan of the earlier items. Why the table: a
 * recovery batch after a crash may hold thousands of redelivered events,
 * which a scan per item would compare with each other: O(n^2) before the
 * batch's fsync. */
static size_t audit_writer_earlier(const audit_batch* b, size_t i, size_t* slots, size_t mask) {
  const audit_item* it = &b->items[i];
  const char* id = b->ids.data + it->id_off;
  size_t k;
  size_t j;
  if (slots == NULL) {
    for (j = 0; it->redelivered && j < i; ++j) {
      const audit_item* e = &b->items[j];
      if (e->skip == AUDIT_SKIP_NONE && e->id_len == it->id_len &&
          memcmp(b->ids.data + e->id_off, id, it->id_len) == 0) {
        return j;
      }
    }
    return (size_t)-1;
  }
  for (k = (size_t)audit_id_hash(id, it->id_len) & mask; slots[k] != 0; k = (k + 1) & mask) {
    const audit_item* e = &b->items[slots[k] - 1];
    if (e->id_len == it->id_len && memcmp(b->ids.data + e->id_off, id, it->id_len) == 0) {
      return slots[k] - 1;
    }
  }
  slots[k] = i + 1;
  return (size_t)-1;
}

/* Marks the redelivered items whose line is already written (in the window)
 * or about to be (an earlier item of this batch), and squeezes their lines
 * out of the batch. Only redelivered events are looked up: nothing else can
 * be a repeat that evhost's idempotency mark did not already stop. Returns
 * how many lines are left to write, their lengths in a->lens. */
static size_t audit_writer_dedup(audit* a, audit_batch* b) {
  size_t i;
  size_t n = 0;
  size_t from = 0;
  size_t to = 0;
  size_t cap = 16;
  size_t* slots;
  while (cap < b->count * 2) {
    cap <<= 1;
  }
  slots = calloc(cap, sizeof *slots); /* NULL: the scan instead */
  for (i = 0; i < b->count; ++i) {
    audit_item* it = &b->items[i];
    const char* id = b->ids.data + it->id_off;
    if (it->redelivered && it->id_len > 0 && audit_seen_has(&a->seen, id, it->id_len)) {
      it->skip = AUDIT_SKIP_SEEN;
    }
    if (it->skip == AUDIT_SKIP_NONE && it->id_len > 0 && (slots != NULL || it->redelivered)) {
      const size_t same = audit_writer_earlier(b, i, slots, cap - 1);
      if (same != (size_t)-1 && it->redelivered) {
        it->skip = AUDIT_SKIP_IN_BATCH;
        it->same_as = same;
      }
    }
    if (it->skip != AUDIT_SKIP_NONE) {
      ++a->duplicates;
      a->api->metric_add(a->m_duplicates, 1);
      audit_log(a, EVH_LOG_DEBUG, "eventId=%.*s was redelivered and is already in %s: not written again",
                (int)(it->id_len > 200 ? 200 : it->id_len), id, a->cfg.file);
    } else {
      if (to != from) {
        memmove(b->lines.data + to, b->lines.data + from, it->line_len);
      }
      to += it->line_len;
      a->lens[n++] = it->line_len;
    }
    from += it->line_len;
  }
  free(slots);
  return n;
}

/* Logs what happened to the file around a batch besides its lines. */
static void audit_writer_note(audit* a, const audit_append_note* note) {
  if (note->reopened) {
    audit_log(a, EVH_LOG_WARN, "audit file %s was moved, removed or replaced by someone else; writing to a new %s",
              a->cfg.file, a->cfg.file);
  }
  if (note->rotated > 0) {
    unsigned r;
    a->rotate_failing = 0;
    a->api->metric_add(a->m_rotations, (int64_t)note->rotated);
    for (r = 0; r < note->rotated; ++r) { /* one line per rotation, as when lines came one by one */
      audit_log(a, EVH_LOG_INFO, "rotated audit file %s (keeping %lld older files)", a->cfg.file,
                (long long)a->cfg.keep);
    }
  }
  if (note->warning[0] != '\0' && !(note->rotate_failed && a->rotate_failing)) {
    audit_log(a, EVH_LOG_ERROR, "%s%s", note->warning,
              note->rotate_failed ? " (logged once until a rotation succeeds)" : "");
  }
  if (note->rotate_failed) {
    a->rotate_failing = 1;
  }
}

/* Writes one batch, then answers every call in it. */
static void audit_writer_run(audit* a, audit_batch* b) {
  char err[512];
  audit_append_note note;
  size_t committed = 0;
  size_t n;
  size_t i;
  size_t k = 0;
  size_t off = 0;
  uint64_t redacted = 0;
  int rc = 0;
  if (a->lens_cap < b->count) {
    size_t* grown = (size_t*)realloc(a->lens, b->count * sizeof(size_t));
    if (grown == NULL) {
      for (i = 0; i < b->count; ++i) {
        (void)a->api->complete(b->items[i].call, EVH_RETRY, audit_str("out of memory writing audit lines"));
      }
      return;
    }
    a->lens = grown;
    a->lens_cap = b->count;
  }
  n = audit_writer_dedup(a, b);
  err[0] = '\0';
  if (n > 0) {
    rc = audit_file_append_batch(&a->file, b->lines.data, a->lens, n, &note, &committed, err, sizeof err);
    audit_writer_note(a, &note);
  }
  ++a->batches;
  if (rc != 0) {
    ++a->write_errors;
    a->api->metric_add(a->m_write_errors, 1);
    if (!a->write_failing) {
      audit_log(a, EVH_LOG_ERROR,
                "%s: %zu events answered RETRY, their lines not in the file. Logged once until a "
                "write works again",
                err, n - committed);
    }
    a->write_failing = 1;
  } else if (a->write_failing && n > 0) {
    a->write_failing = 0;
    audit_log(a, EVH_LOG_INFO, "audit file %s is written again", a->cfg.file);
  }
  /* The outcomes, the window and the stream copy, in the lines' order. */
  for (i = 0; i < b->count; ++i) {
    audit_item* it = &b->items[i];
    if (it->skip == AUDIT_SKIP_SEEN) {
      it->status = EVH_OK;
    } else if (it->skip == AUDIT_SKIP_IN_BATCH) {
      it->status = b->items[it->same_as].status;
    } else {
      it->status = k < committed ? EVH_OK : EVH_RETRY;
      if (it->status == EVH_OK) {
        if (it->id_len > 0) {
          audit_seen_add(&a->seen, b->ids.data + it->id_off, it->id_len);
        }
        redacted += it->redacted;
        /* Sent before any call is completed: once the last one is, evhost
         * may begin to stop and would refuse a later XADD. */
        if (a->stream_key != NULL) {
          audit_stream_add(a, b->lines.data + off, it->line_len);
        }
      }
      off += it->line_len;
      ++k;
    }
  }
  a->redacted += redacted;
  a->api->metric_add(a->m_lines, (int64_t)committed);
  a->api->metric_add(a->m_redacted, (int64_t)redacted);
  for (i = 0; i < b->count; ++i) {
    const audit_item* it = &b->items[i];
    /* EVH_ERR_STATE: a call evhost gave up on (its timeout, the shutdown
     * deadline); its line is written all the same, and evhost logs it. */
    (void)a->api->complete(it->call, it->status, it->status == EVH_OK ? audit_str("") : audit_str(err));
  }
}

/* commit_delay_us: after a batch the writer waits a little before it takes
 * the next one. Why: a writer that sleeps on the empty queue is woken by the
 * very next event -- a futex wake and a context switch on evhost's loop
 * thread per event when the disk keeps up (a fast disk, fsync "never") --
 * and then writes (and fsyncs) that one line alone. Events queued while it
 * waits wake no one (handle() signals, but nobody waits on the condition)
 * and share the next write and fsync. An event's answer waits at most this
 * much longer. Not while stopping: shutdown takes what is left at once. */
static void audit_commit_delay(audit* a) {
  struct timespec ts;
  int stopping;
  if (a->cfg.commit_delay_us <= 0) {
    return;
  }
  pthread_mutex_lock(&a->queue_lock);
  stopping = a->writer_stopping;
  pthread_mutex_unlock(&a->queue_lock);
  if (stopping) {
    return;
  }
  ts.tv_sec = (time_t)(a->cfg.commit_delay_us / 1000000);
  ts.tv_nsec = (long)(a->cfg.commit_delay_us % 1000000) * 1000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    /* interrupted by a signal: sleep the rest */
  }
}

static void* audit_writer_main(void* arg) {
  audit* a = (audit*)arg;
  audit_batch swap;
  audit_load_seen(a);
  for (;;) {
    pthread_mutex_lock(&a->queue_lock);
    while (a->queued.count == 0 && !a->writer_stopping) {
      pthread_cond_wait(&a->queue_wake, &a->queue_lock);
    }
    if (a->queued.count == 0) { /* stopping, and everything written */
      pthread_mutex_unlock(&a->queue_lock);
      break;
    }
    swap = a->queued;
    a->queued = a->batch;
    a->batch = swap;
    pthread_mutex_unlock(&a->queue_lock);
    audit_writer_run(a, &a->batch);
    audit_batch_reset(&a->batch);
    audit_commit_delay(a);
  }
  return NULL;
}

int audit_start_writer(audit* a) {
  if (pthread_cond_init(&a->queue_wake, NULL) != 0) {
    return -1;
  }
  if (pthread_create(&a->writer, NULL, audit_writer_main, a) != 0) {
    pthread_cond_destroy(&a->queue_wake);
    return -1;
  }
  a->writer_started = 1;
  return 0;
}

void audit_stop_writer(audit* a) {
  if (!a->writer_started) {
    return;
  }
  pthread_mutex_lock(&a->queue_lock);
  a->writer_stopping = 1;
  pthread_cond_signal(&a->queue_wake);
  pthread_mutex_unlock(&a->queue_lock);
  pthread_join(a->writer, NULL);
  pthread_cond_destroy(&a->queue_wake);
  a->writer_started = 0;
}
