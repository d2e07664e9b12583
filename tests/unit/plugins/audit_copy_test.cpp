// The audit plugin's redacting copier (plugins/audit/audit_redact.c), byte
// for byte: whitespace between tokens left out, strings with escapes written
// again in the writer's form, values at configured paths replaced, and the
// top-level userId and action found in the same pass. The copier appends runs
// of its input whole rather than token by token, so these cases put the
// changes at every kind of place a run can start or end.
extern "C" {
#include "audit_redact.h"
#include "json_scan.h"
}

#include <gtest/gtest.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace {

struct AuditCopyResult {
  int rc = 0;
  std::string out;
  unsigned redacted = 0;
  std::optional<std::string> user;
  std::optional<std::string> action;
};

AuditCopyResult auditCopy(std::string_view payload, std::initializer_list<const char*> paths = {},
                          std::string_view already = {}) {
  audit_redactor r;
  audit_redactor_init(&r);
  char err[128];
  for (const char* p : paths) {
    EXPECT_EQ(audit_redactor_add(&r, p, std::char_traits<char>::length(p), err, sizeof err), 0) << err;
  }
  audit_copier c;
  audit_copier_init(&c, &r);
  c.capture = 1;
  audit_buf out;
  audit_buf_init(&out);
  audit_buf_append(&out, already.data(), already.size());
  AuditCopyResult res;
  res.rc = audit_copy_redacted(&c, &out, evh_str{payload.data(), payload.size()}, audit_redact_all(&r), 0);
  res.out.assign(out.data != nullptr ? out.data : "", out.len);
  res.redacted = c.redacted;
  if (c.user.ptr != nullptr) {
    res.user = std::string(c.user.ptr, c.user.len);
  }
  if (c.action.ptr != nullptr) {
    res.action = std::string(c.action.ptr, c.action.len);
  }
  audit_buf_free(&out);
  audit_copier_free(&c);
  audit_redactor_free(&r);
  return res;
}

TEST(AuditCopyTest, ACompactPayloadOfPlainStringsIsCopiedAsItStands) {
  const std::string in =
      R"({"productId":"p-1","name":"Mug","price":12.5,"stock":42,"tags":["a","b"],"ok":true,"gone":null,"o":{}})";
  const auto res = auditCopy(in, {"metadata.email"});
  EXPECT_EQ(res.rc, 0);
  EXPECT_EQ(res.out, in);
  EXPECT_EQ(res.redacted, 0u);
}

TEST(AuditCopyTest, WhitespaceIsLeftOutWhereverItStands) {
  const auto res = auditCopy(" \t{ \"a\" :\n1 , \"b\":[ 1 ,2 ] ,\"c\": { } ,\"d\":[ ]\r} \n");
  EXPECT_EQ(res.rc, 0);
  EXPECT_EQ(res.out, R"({"a":1,"b":[1,2],"c":{},"d":[]})");
}

TEST(AuditCopyTest, StringsWithEscapesAreWrittenAgainAndTheRunsAroundThemKept) {
  // \u0041 decodes to A; "\/" to "/"; a tab stays escaped; a key too.
  const auto res = auditCopy(R"({"k\u0041y":"x\/y","t":"a\tb","plain":"z"})");
  EXPECT_EQ(res.rc, 0);
  EXPECT_EQ(res.out, R"({"kAy":"x/y","t":"a\tb","plain":"z"})");
}

TEST(AuditCopyTest, RedactedValuesAreReplacedWholeWhateverTheirType) {
  const auto res =
      auditCopy(R"({"metadata":{"email":"a@b.c","ip": [1, 2],"keep":"x","nested":{"email":{"deep":1}}},"email":"top"})",
                {"metadata.email", "metadata.ip", "metadata.*.email"});
  EXPECT_EQ(res.rc, 0);
  EXPECT_EQ(res.out,
            R"({"metadata":{"email":"[redacted]","ip":"[redacted]","keep":"x","nested":{"email":"[redacted]"}},)"
            R"("email":"top"})");
  EXPECT_EQ(res.redacted, 3u);
}

TEST(AuditCopyTest, ArraysAreTransparentToPaths) {
  const auto res = auditCopy(R"({"devices":[{"ip":"1.2.3.4","os":"x"}, {"ip":5}]})", {"devices.ip"});
  EXPECT_EQ(res.rc, 0);
  EXPECT_EQ(res.out, R"({"devices":[{"ip":"[redacted]","os":"x"},{"ip":"[redacted]"}]})");
}

TEST(AuditCopyTest, ARedactedValueAtTheEndOrBeforeWhitespaceLeavesNothingOfIt) {
  const auto res = auditCopy(R"({"a":1,"secret" : "s"  })", {"secret"});
  EXPECT_EQ(res.rc, 0);
  EXPECT_EQ(res.out, R"({"a":1,"secret":"[redacted]"})");
}

TEST(AuditCopyTest, ACopyIsAppendedAfterWhatTheOutputAlreadyHolds) {
  const auto res = auditCopy(R"( {"a": "b"} )", {}, "prefix:");
  EXPECT_EQ(res.rc, 0);
  EXPECT_EQ(res.out, R"(prefix:{"a":"b"})");
}

TEST(AuditCopyTest, TopLevelUserIdAndActionAreFoundTheLastOfEach) {
  const auto res = auditCopy(R"({"userId":"u1","x":{"userId":"inner"},"action" : "login","userId":"u2"})");
  EXPECT_EQ(res.rc, 0);
  ASSERT_TRUE(res.user.has_value());
  EXPECT_EQ(*res.user, R"("u2")");
  ASSERT_TRUE(res.action.has_value());
  EXPECT_EQ(*res.action, R"("login")");
}

TEST(AuditCopyTest, InvalidJsonIsRefusedWherever) {
  for (const char* bad : {"", "{", R"({"a":})", R"({"a" 1})", R"({"a":1,})", R"({"a":1} x)", R"([1 2])",
                          R"({"a":"\x"})", R"({"a":01})", "{\"a\":\"\x01\"}", R"({a:1})",
                          R"({"s":"a"})"
                          "\x80"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(auditCopy(bad).rc, -1);
  }
}

TEST(AuditCopyTest, BytesAboveAsciiAreCheckedAndKept) {
  const auto res = auditCopy("{\"name\":\"caf\xC3\xA9\"}");
  EXPECT_EQ(res.rc, 0);
  EXPECT_EQ(res.out, "{\"name\":\"caf\xC3\xA9\"}");
}

TEST(AuditCopyTest, TheStringWriterEscapesWhatItMustAndCopiesTheRest) {
  audit_buf out;
  audit_buf_init(&out);
  audit_json_write_string(&out, "plain id-1", 10);
  audit_json_write_string(&out, "q\"b\\n\n", 6);
  audit_json_write_string(&out, nullptr, 0);
  EXPECT_EQ(std::string(out.data, out.len), R"("plain id-1""q\"b\\n\n""")");
  audit_buf_free(&out);
}

}  // namespace
