// The product plugin's two payload readers, compiled in: the fast one
// (simdjson) reads the common payloads to exactly the Change the checked one
// (nlohmann) gives, and declines what it cannot read the same way. The fuzz
// harness product_payload compares them on arbitrary input.
#include "../../../plugins/product/product_events.h"

#include <gtest/gtest.h>

#include <optional>
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

  Change c = *fast(Action::Created, R"({"productId":"p-1","name":"Mug","price":1e2,"category":"k","s":3})");
  EXPECT_EQ(c.set, (std::vector<std::string>{"productId", "p-1", "name", "Mug", "price", "100.0", "category", "k",
                                             "createdAt", kAtText, "updatedAt", kAtText, "s", "3"}));
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
}

}  // namespace
}  // namespace product
