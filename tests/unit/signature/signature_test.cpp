// Signed messages: the wire form, keys, and verification -- against the
// Standard Webhooks test vector, so that any library implementing the scheme
// interoperates.
#include "signature/frame.h"
#include "signature/key.h"
#include "signature/verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace evh::signature {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The example of the Standard Webhooks specification.
constexpr const char* kSpecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kSpecId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kSpecTimestamp = 1614265330;
constexpr const char* kSpecBody = "{\"test\": 2432232314}";
constexpr const char* kSpecSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

std::string secretOf(const char* text) {
  std::string secret;
  std::string why;
  EXPECT_TRUE(decodeSecret(text, secret, why)) << why;
  return secret;
}

Verifier specVerifier(uint32_t tolerance_s = 300) {
  return Verifier({Key{"spec", secretOf(kSpecSecret)}}, tolerance_s);
}

std::string specFrame() { return makeFrame(kSpecId, kSpecTimestamp, kSpecSignature, kSpecBody); }

TEST(SignatureTest, SignsTheSpecificationsExample) {
  EXPECT_EQ(signV1(secretOf(kSpecSecret), kSpecId, kSpecTimestamp, kSpecBody), kSpecSignature);
}

TEST(SignatureTest, VerifiesTheSpecificationsExampleAndHandsOnTheBody) {
  Verifier v = specVerifier();
  const std::string msg = specFrame();
  const Verifier::Result r = v.verify(msg, kSpecTimestamp + 10);
  ASSERT_TRUE(r.ok()) << r.failed << ": " << r.detail;
  EXPECT_EQ(r.frame.body, kSpecBody);
  EXPECT_EQ(r.frame.id, kSpecId);
  EXPECT_EQ(r.key, 0u);
  // The contexts are reused: a second message verifies as well.
  EXPECT_TRUE(v.verify(msg, kSpecTimestamp).ok());
}

TEST(SignatureTest, EachTamperingFailsWithItsOwnCheck) {
  Verifier v = specVerifier();
  const auto failed = [&](const std::string& msg, int64_t now = kSpecTimestamp) {
    const Verifier::Result r = v.verify(msg, now);
    return std::string(r.failed) + ": " + r.detail;
  };
  // A flipped byte of the body, of the id, of the timestamp.
  std::string body = specFrame();
  body[body.size() - 3] ^= 1;
  EXPECT_THAT(failed(body), HasSubstr("no_match"));
  EXPECT_THAT(failed(makeFrame("msg_p5jXN8AQM9LWM0D4loKWxJeK", kSpecTimestamp, kSpecSignature, kSpecBody)),
              HasSubstr("no_match"));
  EXPECT_THAT(failed(makeFrame(kSpecId, kSpecTimestamp + 1, kSpecSignature, kSpecBody), kSpecTimestamp),
              HasSubstr("no_match"));
  // A wrong key.
  Verifier other({Key{"other", std::string(32, 'k')}}, 300);
  EXPECT_STREQ(other.verify(specFrame(), kSpecTimestamp).failed, "no_match");
  // Stale and future, six minutes either way.
  EXPECT_THAT(failed(specFrame(), kSpecTimestamp + 360), HasSubstr("stale: webhook-timestamp is 360 s old"));
  EXPECT_THAT(failed(specFrame(), kSpecTimestamp - 360), HasSubstr("future: webhook-timestamp is 360 s in the future"));
  // The tolerance's edges pass.
  EXPECT_TRUE(v.verify(specFrame(), kSpecTimestamp + 300).ok());
  EXPECT_TRUE(v.verify(specFrame(), kSpecTimestamp - 300).ok());
}

TEST(SignatureTest, MissingOrMalformedHeadersAreNamed) {
  Verifier v = specVerifier();
  const auto failed = [&](const std::string& msg) {
    const Verifier::Result r = v.verify(msg, kSpecTimestamp);
    return std::string(r.failed) + ": " + r.detail;
  };
  EXPECT_THAT(failed(kSpecBody), HasSubstr("missing: the message has no signature headers"));
  EXPECT_THAT(failed(std::string("webhook-id: a\nwebhook-timestamp: 1\n\n{}")),
              HasSubstr("missing: no webhook-signature"));
  EXPECT_THAT(failed(makeFrame(kSpecId, kSpecTimestamp, "v1a,abc", kSpecBody)), HasSubstr("missing: webhook-signature "
                                                                                          "holds no v1 signature"));
  // Odd length, not base64, no padding.
  EXPECT_THAT(failed(makeFrame(kSpecId, kSpecTimestamp, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", kSpecBody)),
              HasSubstr("malformed: webhook-signature item 1 is not base64 of 32 bytes"));
  EXPECT_THAT(failed(makeFrame(kSpecId, kSpecTimestamp, "v1,g0hM9SsE*OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", kSpecBody)),
              HasSubstr("malformed"));
  EXPECT_THAT(failed(makeFrame(kSpecId, kSpecTimestamp, "v1,", kSpecBody)), HasSubstr("malformed"));
  EXPECT_THAT(
      failed(makeFrame(kSpecId, kSpecTimestamp, std::string(kSpecSignature) + "  " + kSpecSignature, kSpecBody)),
      HasSubstr("malformed: webhook-signature has an empty item"));
  EXPECT_THAT(
      failed(std::string("webhook-id: a\nwebhook-timestamp: 12x\nwebhook-signature: ") + kSpecSignature + "\n\n{}"),
      HasSubstr("malformed: webhook-timestamp must be decimal digits"));
  EXPECT_THAT(failed(std::string("webhook-id: a\nwebhook-id: b\nwebhook-timestamp: 1\nwebhook-signature: ") +
                     kSpecSignature + "\n\n{}"),
              HasSubstr("malformed: webhook-id appears twice"));
  EXPECT_THAT(failed(std::string("webhook-id: a\nx-other: 1\n\n{}")), HasSubstr("malformed: unknown signature header"));
  EXPECT_THAT(failed(std::string("webhook-id: a\nwebhook-timestamp: 1\nwebhook-signature: ") + kSpecSignature),
              HasSubstr("malformed: no blank line ends the signature headers"));
  EXPECT_THAT(failed("webhook-id: " + std::string(5000, 'a') + "\n\n{}"), HasSubstr("within 4096 bytes"));
  EXPECT_THAT(
      failed(std::string("webhook-id: a b\nwebhook-timestamp: 1\nwebhook-signature: ") + kSpecSignature + "\n\n{}"),
      HasSubstr("malformed: webhook-id holds a character other than visible ASCII"));
}

TEST(SignatureTest, CrLfHeadersAndCaseInsensitiveNamesAreAccepted) {
  Verifier v = specVerifier();
  const std::string msg = std::string("Webhook-Id: ") + kSpecId +
                          "\r\nWEBHOOK-TIMESTAMP: " + std::to_string(kSpecTimestamp) +
                          "\r\nwebhook-signature: " + kSpecSignature + "\r\n\r\n" + kSpecBody;
  const Verifier::Result r = v.verify(msg, kSpecTimestamp);
  ASSERT_TRUE(r.ok()) << r.failed << ": " << r.detail;
  EXPECT_EQ(r.frame.body, kSpecBody);
}

TEST(SignatureTest, RotationAnyKeyAndAnySignatureVerifies) {
  const std::string old_key(32, 'o');
  const std::string new_key(32, 'n');
  const std::string sig_old = signV1(old_key, "m1", 1000, "{}");
  const std::string sig_new = signV1(new_key, "m1", 1000, "{}");
  Verifier both({Key{"old", old_key}, Key{"new", new_key}}, 300);
  // A publisher still on the old key, one on the new, one sending both.
  EXPECT_EQ(both.verify(makeFrame("m1", 1000, sig_old, "{}"), 1000).key, 0u);
  EXPECT_EQ(both.verify(makeFrame("m1", 1000, sig_new, "{}"), 1000).key, 1u);
  EXPECT_TRUE(both.verify(makeFrame("m1", 1000, "v1a,ignored " + sig_old + " " + sig_new, "{}"), 1000).ok());
  // The old key removed: its signatures stop verifying.
  Verifier only_new({Key{"new", new_key}}, 300);
  EXPECT_STREQ(only_new.verify(makeFrame("m1", 1000, sig_old, "{}"), 1000).failed, "no_match");
  EXPECT_TRUE(only_new.verify(makeFrame("m1", 1000, sig_old + " " + sig_new, "{}"), 1000).ok());
}

TEST(SignatureTest, SecretsAreStandardWebhooksTextAndNeverQuoted) {
  std::string secret;
  std::string why;
  EXPECT_TRUE(decodeSecret(kSpecSecret, secret, why));
  EXPECT_EQ(secret.size(), 24u);
  for (const char* bad : {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
                          "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La*aSw", "whsec_c2hvcnQ="}) {
    EXPECT_FALSE(decodeSecret(bad, secret, why)) << bad;
    EXPECT_THAT(why, Not(HasSubstr("MfKQ9r8G"))) << bad;
    EXPECT_THAT(why, HasSubstr("openssl rand -base64 32"));
  }
  EXPECT_THAT((decodeSecret("whsec_c2hvcnQ=", secret, why), why), HasSubstr("the key is 5 bytes"));
}

}  // namespace
}  // namespace evh::signature
