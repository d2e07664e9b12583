// Micro benchmarks of signed channels' verify stage without Redis: parsing
// the headers, one HMAC-SHA256 per key and the constant-time comparison, for
// the plan's PRODUCT_CREATED (about 290 bytes) and a 16 KiB event; with one
// key, and mid-rotation with two where the second matches (the worst case).
#include "signature/frame.h"
#include "signature/verifier.h"

#include <benchmark/benchmark.h>

namespace {

const std::string kBody = R"({"eventId":"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f","eventType":"PRODUCT_CREATED",)"
                          R"("timestamp":"2026-11-26T10:30:00.000Z","correlationId":"req-7d9e2b1c-3f4a-4b5c-9d8e",)"
                          R"("payload":{"productId":"prod-000123","name":"Stoneware Mug, 350 ml","price":12.5,)"
                          R"("category":"kitchen","sentAtNs":1764153000000000000}})";
constexpr int64_t kNow = 1764763200;
const std::string kOld(32, 'o');
const std::string kNew(32, 'n');

std::string signedMessage(const std::string& key, const std::string& body) {
  return evh::signature::makeFrame("msg_6f1c2d3e", kNow, evh::signature::signV1(key, "msg_6f1c2d3e", kNow, body), body);
}

void BM_SignatureParse(benchmark::State& state) {
  const std::string msg = signedMessage(kNew, kBody);
  evh::signature::Frame frame;
  evh::signature::FrameError error;
  for (auto _ : state) {
    benchmark::DoNotOptimize(evh::signature::parseFrame(msg, frame, error));
  }
}
BENCHMARK(BM_SignatureParse);

// state.range(0): body bytes (0: the plan's event); range(1): keys.
void BM_SignatureVerify(benchmark::State& state) {
  const std::string body = state.range(0) == 0 ? kBody : std::string(static_cast<size_t>(state.range(0)), 'x');
  std::vector<evh::signature::Key> keys;
  if (state.range(1) == 2) {
    keys.push_back({"old", kOld});
  }
  keys.push_back({"new", kNew});
  evh::signature::Verifier verifier(std::move(keys), 300);
  const std::string msg = signedMessage(kNew, body);
  for (auto _ : state) {
    auto r = verifier.verify(msg, kNow);
    if (!r.ok()) {
      state.SkipWithError("did not verify");
    }
    benchmark::DoNotOptimize(r.frame.body.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}
BENCHMARK(BM_SignatureVerify)->Args({0, 1})->Args({0, 2})->Args({16384, 1});

}  // namespace
