// The product plugin's two payload readers, compiled in: the fast one
// (simdjson) reads the common payloads to exactly the Change the checked one
// (nlohmann) gives, and declines what it cannot read the same way. The fuzz
// harness product_payload compares them on arbitrary input.
#include "../../../plugins/product/product_events.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace product {
namespace {

constexpr int64_t kAt = 1705314600123;
constexpr const char* kAtText = "2024-01-15T10:30:00.123Z";

Change checked(Action a, const std::string& payload) {
  static const char* kTypes[] = {"PRODUCT_CREATED", "PRODUCT_UPDATED", "PRODUCT_DELETED"};
  return parseChangeChecked(a, kTypes[static_cast<int>(a)], payload, kAt);
}
std::optional<Change> fast(Action a, const std::string& payload) {
  static const char* kTypes[] = {"PRODUCT_CREATED", "PRODUCT_UPDATED", "PRODUCT_DELETED"};
  return parseChangeFast(a, kTypes[static_cast<int>(a)], payload, kAt);
}

// The fast reader accepts the payload and gives what the checked one does.
void expectSame(Action a, const std::string& payload) {
  SCOPED_TRACE(payload);
  std::optional<Change> f = fast(a, payload);
  ASSERT_TRUE(f.has_value()) << "the fast reader declined";
  Change c = checked(a, payload);
  EXPECT_EQ(f->action, c.action);
  EXPECT_EQ(f->event_type, c.event_type);
  EXPECT_EQ(f->product_id, c.product_id);
  EXPECT_EQ(f->name, c.name);
  EXPECT_EQ(f->category, c.category);
  EXPECT_EQ(f->price, c.price);
  EXPECT_EQ(f->set, c.set);
  EXPECT_EQ(f->unset, c.unset);
  EXPECT_EQ(f->changed, c.changed);
}

TEST(ProductPayload, TheFastReaderReadsCommonPayloadsAsTheCheckedOneDoes) {
  expectSame(Action::Created, R"({"productId":"p-1","name":"Mug","price":12.5,"category":"kitchen"})");
  expectSame(Action::Created,
             R"({"productId":"p-1","name":"M\u00fcg \"x\"","price":15,"category":"k","stock":3,"featured":true,)"
             R"("ratio":0.1,"big":1e2,"createdAt":"no","note":null,"":"empty"})");
  expectSame(Action::Created, R"({"productId":"p-1","name":"Mug","price":0,"category":"k","u":18446744073709551615})");
  expectSame(Action::Updated,
             R"({"productId":"p-1","changes":{"price":1e2,"category":"garden","stock":null,"productId":"p-1",)"
             R"("updatedAt":"x","name":"Cup","active":false,"n":-3}})");
  expectSame(Action::Updated, R"({"productId":"p-1","changes":{}})");
  expectSame(Action::Deleted, R"({"productId":"p-1","anything":{"a":[1]}})");

  // escaped keys are the keys they spell; "-0" is an integer to both; pairs
  // of surrogates and NULs in strings
  expectSame(Action::Created, R"({"productId":"p-1","na\u006de":"Mug","price":-0,"category":"k","x":-0})");
  expectSame(Action::Updated,
             R"({"productId":"p-1","changes":{"emoji":"\ud83d\ude00","nul":"a\u0000b","k\u0000":"v"}})");

  Change c = *fast(Action::Created, R"({"productId":"p-1","name":"Mug","price":1e2,"category":"k","s":3})");
  EXPECT_EQ(c.set, (std::vector<std::string>{"productId", "p-1", "name", "Mug", "price", "100.0", "category", "k",
                                             "createdAt", kAtText, "updatedAt", kAtText, "s", "3"}));
}

// Prices and other numbers that are doubles: the fast reader writes them
// with nlohmann's Grisu2 directly, the checked one through dump().
TEST(ProductPayload, DoublesAreWrittenAsTheCheckedReaderWritesThem) {
  std::mt19937_64 rng(20261207);
  for (int round = 0; round < 3000; ++round) {
    double d = 0;
    switch (round % 3) {
      case 0:  // a price as people write them
        d = static_cast<double>(rng() % 1000000) / 100.0;
        break;
      case 1: {  // any finite non-negative double
        const uint64_t bits = rng() & 0x7fefffffffffffffULL;
        std::memcpy(&d, &bits, sizeof d);
        break;
      }
      default:  // a small or large magnitude
        d = std::ldexp(static_cast<double>(rng() % 1000 + 1), static_cast<int>(rng() % 200) - 100);
    }
    const std::string text = nlohmann::json(d).dump();
    expectSame(Action::Created, R"({"productId":"p-1","name":"Mug","price":)" + text + R"(,"category":"k","w":)" +
                                    nlohmann::json(-d).dump() + "}");
  }
}

TEST(ProductPayload, TheFastReaderDeclinesWhatItCannotReadTheSameWay) {
  // invalid: the checked reader's message is the one an operator sees
  EXPECT_FALSE(fast(Action::Created, R"({"productId":"p-1","name":"Mug","price":-1,"category":"k"})"));
  EXPECT_FALSE(fast(Action::Created, R"({"productId":"","name":"Mug","price":1,"category":"k"})"));
  EXPECT_FALSE(fast(Action::Created, R"([1])"));
  EXPECT_FALSE(fast(Action::Created, R"({"productId":"p-1")"));
  EXPECT_FALSE(fast(Action::Updated, R"({"productId":"p-1","changes":{"productId":"p-2"}})"));
  EXPECT_FALSE(fast(Action::Updated, R"({"productId":"p-1","changes":{"":1}})"));
  EXPECT_FALSE(fast(Action::Updated, R"({"productId":"p-1","changes":[]})"));
  // valid, but read by the checked reader: objects and arrays as values,
  // duplicate keys, a negative zero
  EXPECT_FALSE(fast(Action::Created, R"({"productId":"p-1","name":"Mug","price":1,"category":"k","tags":["a"]})"));
  EXPECT_FALSE(fast(Action::Updated, R"({"productId":"p-1","changes":{"dims":{"w":1}}})"));
  EXPECT_FALSE(fast(Action::Updated, R"({"productId":"p-1","changes":{"a":1,"a":2}})"));
  EXPECT_FALSE(fast(Action::Created, R"({"productId":"p-1","productId":"p-2","name":"M","price":1,"category":"k"})"));
  EXPECT_FALSE(fast(Action::Created, R"({"productId":"p-1","name":"Mug","price":-0.0,"category":"k"})"));
  EXPECT_EQ(*checked(Action::Created, R"({"productId":"p-1","name":"Mug","price":-0.0,"category":"k"})").price, "-0.0");
  // a key spelled twice, once escaped
  EXPECT_FALSE(fast(Action::Updated, R"({"productId":"p-1","changes":{"name":"a","na\u006de":"b"}})"));
  // integers beyond 64 bits (the checked reader keeps them as floating-point text)
  EXPECT_FALSE(fast(Action::Updated, R"({"productId":"p-1","changes":{"n":-9223372036854775809}})"));
  EXPECT_FALSE(fast(Action::Updated, R"({"productId":"p-1","changes":{"n":18446744073709551616}})"));
  // more than 64 keys
  std::string many = R"({"productId":"p-1","changes":{)";
  for (int i = 0; i < 65; ++i) {
    many += (i == 0 ? "\"k" : ",\"k") + std::to_string(i) + "\":1";
  }
  many += "}}";
  EXPECT_FALSE(fast(Action::Updated, many));
  EXPECT_NO_THROW(checked(Action::Updated, many));
}

TEST(ProductPayload, LargePayloadsGoToTheCheckedReaderAndTheNextSmallOneIsReadFast) {
  // Over 64 KiB: declined before parsing (the parser's buffers would stay
  // that large for the thread's life).
  const std::string big =
      R"({"productId":"p-1","name":"Mug","price":1,"category":"k","text":")" + std::string(70 * 1024, 'x') + "\"}";
  EXPECT_FALSE(fast(Action::Created, big));
  EXPECT_EQ(checked(Action::Created, big).set.size(), 14u);
  expectSame(Action::Created, R"({"productId":"p-2","name":"Cup","price":2,"category":"k"})");
}

}  // namespace
}  // namespace product
