/* audit_seen: see audit_seen.h. POSIX only: open/pread/fstat. */
#define _POSIX_C_SOURCE 200809L

#include "audit_seen.h"

#include "audit_buf.h"
#include "json_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes read per step backwards (more when a line is longer than this). */
#define AUDIT_SEEN_CHUNK ((size_t)1 << 20)

int audit_seen_init(audit_seen* s, size_t cap) {
  memset(s, 0, sizeof(*s));
  if (cap == 0) {
    return 0;
  }
  s->ring = (audit_seen_id*)calloc(cap, sizeof(audit_seen_id));
  if (s->ring == NULL) {
    return -1;
  }
  s->cap = cap;
  return 0;
}

void audit_seen_free(audit_seen* s) {
  size_t i;
  for (i = 0; i < s->cap; ++i) {
    free(s->ring[i].ptr);
  }
  free(s->ring);
  memset(s, 0, sizeof(*s));
}

/* Puts an id the window takes ownership of into the next slot. */
static void audit_seen_put(audit_seen* s, char* ptr, size_t len) {
  audit_seen_id* slot = &s->ring[s->next];
  free(slot->ptr);
  slot->ptr = ptr;
  slot->len = len;
  s->next = (s->next + 1) % s->cap;
}

void audit_seen_add(audit_seen* s, const char* id, size_t len) {
  char* copy;
  if (s->cap == 0) {
    return;
  }
  copy = (char*)malloc(len + 1);
  if (copy == NULL) {
    return;
  }
  memcpy(copy, id, len);
  copy[len] = '\0';
  audit_seen_put(s, copy, len);
}

int audit_seen_has(const audit_seen* s, const char* id, size_t len) {
  size_t i;
  for (i = 0; i < s->cap; ++i) {
    const audit_seen_id* e = &s->ring[i];
    if (e->ptr != NULL && e->len == len && memcmp(e->ptr, id, len) == 0) {
      return 1;
    }
  }
  return 0;
}

/* ---- loading: the files read backwards ---------------------------------------- */

/* The ids found so far, newest first. */
typedef struct audit_seen_found {
  audit_seen_id* ids;
  size_t count;
  size_t want;
  size_t bytes_left; /* of AUDIT_SEEN_MAX_LOAD_BYTES */
  int truncated;
} audit_seen_found;

/* Takes the eventId of one audit line (without its '\n'), if it has one and
 * is whole. A line cut short -- a write that a crash interrupted -- is not
 * taken even when its eventId survived: its event was never acknowledged
 * (the plugin answers OK only after the whole batch is written and, with
 * fsync "always", on disk), so its redelivery must write the line again. */
static void audit_seen_line(audit_seen_found* f, const char* p, size_t n) {
  audit_json_iter it;
  evh_str line;
  evh_str key;
  evh_str value;
  evh_str id_token;
  int rc;
  line.ptr = p;
  line.len = n;
  id_token.ptr = NULL;
  id_token.len = 0;
  if (n == 0 || !audit_json_object(&it, line)) {
    return;
  }
  while ((rc = audit_json_next(&it, &key, &value)) == 1) {
    if (id_token.ptr == NULL && audit_json_key_is(key, "eventId", 7)) {
      id_token = value;
    }
  }
  if (rc == 0 && id_token.len > 0 && id_token.ptr[0] == '"') {
    audit_buf id;
    audit_buf_init(&id);
    if (audit_json_string(id_token.ptr, id_token.ptr + id_token.len, &id) == NULL || id.failed || id.len == 0) {
      audit_buf_free(&id);
      return;
    }
    f->ids[f->count].ptr = id.data; /* NUL-terminated, handed over */
    f->ids[f->count].len = id.len;
    ++f->count;
  }
}

/* Splits off the complete lines at the end of buf[0, *len), newest first,
 * until enough ids are found; leaves the incomplete first line in place. */
static void audit_seen_split(audit_seen_found* f, const char* buf, size_t* len) {
  size_t end = *len;
  size_t i = end;
  while (i > 0 && f->count < f->want) {
    if (buf[i - 1] == '\n') {
      audit_seen_line(f, buf + i, end - i);
      end = i - 1;
    }
    --i;
  }
  *len = end;
}

/* Reads `path` backwards, collecting ids. A missing file is empty. */
static int audit_seen_scan(audit_seen_found* f, const char* path, char* err, size_t errlen) {
  struct stat st;
  char* buf = NULL; /* the file's bytes [pos, pos + len) not yet split into lines */
  size_t len = 0;
  off_t pos;
  int rc = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return 0;
    }
    snprintf(err, errlen, "cannot open audit file \"%s\" to read its last eventIds: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0) {
    snprintf(err, errlen, "cannot stat audit file \"%s\": %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  pos = st.st_size;
  while (f->count < f->want) {
    size_t chunk;
    char* grown;
    ssize_t got;
    if (pos == 0) {
      audit_seen_line(f, buf, len); /* the file's first line */
      break;
    }
    /* At least as much as is carried: a long line costs linear time. */
    chunk = len > AUDIT_SEEN_CHUNK ? len : AUDIT_SEEN_CHUNK;
    if ((off_t)chunk > pos) {
      chunk = (size_t)pos;
    }
    if (chunk > f->bytes_left) {
      f->truncated = 1;
      break;
    }
    f->bytes_left -= chunk;
    grown = (char*)malloc(chunk + len);
    if (grown == NULL) {
      snprintf(err, errlen, "out of memory reading the last eventIds of \"%s\"", path);
      rc = -1;
      break;
    }
    got = pread(fd, grown, chunk, pos - (off_t)chunk);
    if (got != (ssize_t)chunk) {
      snprintf(err, errlen, "cannot read audit file \"%s\": %s", path, got < 0 ? strerror(errno) : "short read");
      free(grown);
      rc = -1;
      break;
    }
    if (len > 0) {
      memcpy(grown + chunk, buf, len);
    }
    free(buf);
    buf = grown;
    len += chunk;
    pos -= (off_t)chunk;
    audit_seen_split(f, buf, &len);
  }
  free(buf);
  close(fd);
  return rc;
}

int audit_seen_load(audit_seen* s, const char* path, size_t* loaded, int* truncated, char* err, size_t errlen) {
  audit_seen_found f;
  size_t n = strlen(path) + 3;
  char* rotated;
  int rc;
  *loaded = 0;
  *truncated = 0;
  if (s->cap == 0) {
    return 0;
  }
  memset(&f, 0, sizeof f);
  f.want = s->cap;
  f.bytes_left = AUDIT_SEEN_MAX_LOAD_BYTES;
  f.ids = (audit_seen_id*)calloc(s->cap, sizeof(audit_seen_id));
  rotated = (char*)malloc(n);
  if (f.ids == NULL || rotated == NULL) {
    free(f.ids);
    free(rotated);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  snprintf(rotated, n, "%s.1", path);
  rc = audit_seen_scan(&f, path, err, errlen);
  if (rc == 0 && f.count < f.want && !f.truncated) {
    rc = audit_seen_scan(&f, rotated, err, errlen); /* the lines before the last rotation */
  }
  free(rotated);
  /* Oldest first, so the window forgets them first. */
  while (f.count > 0) {
    --f.count;
    audit_seen_put(s, f.ids[f.count].ptr, f.ids[f.count].len);
    ++*loaded;
  }
  free(f.ids);
  *truncated = f.truncated;
  return rc;
}
