// ok_cpp: a C++ test plugin exercising the wrapper's exception and pending paths.
// Event types: "THROW" throws std::runtime_error("boom"); "REJECT_EX" throws
// evh::Reject("bad payload"); "PENDING" defers and completes OK through
// Host::post; "DROP" defers and drops the Completion; else OK. The
// constructor throws when the config contains "throw_in_ctor". ABI 1.1:
// counts events by type (label "type": OK or other) and observes 2 ms per
// event in histogram "work_seconds"; health() throws when the config
// contains "health_throws".
#include <evh/plugin.hpp>

#include <stdexcept>
#include <string>

namespace {

class OkCpp final : public evh::Plugin {
 public:
  static constexpr uint32_t kFlags = EVH_PLUGIN_BLOCKING;
  static constexpr uint32_t kMaxConcurrency = 2;
  static constexpr const char* kDescription = "test plugin in C++";

  OkCpp(evh::Host host, std::string_view config)
      : Plugin(host),
        handled_(host.counter("handled")),
        ok_(host.counter("by_type", "events by type", {{"type", "OK"}})),
        other_(host.counter("by_type", "events by type", {{"type", "other"}})),
        work_(host.histogram("work_seconds", "work per event", {0.001, 0.005, 0.01})),
        health_throws_(config.find("health_throws") != std::string_view::npos) {
    if (config.find("throw_in_ctor") != std::string_view::npos) {
      throw std::runtime_error("config says throw_in_ctor");
    }
  }

  Health health() override {
    if (health_throws_) {
      throw std::runtime_error("database unreachable");
    }
    return {};
  }

  evh::Result handle(const evh::Event& ev, evh::Call& call) override {
    handled_.add();
    (ev.type() == "OK" ? ok_ : other_).add();
    work_.observe(0.002);
    if (ev.type() == "THROW") {
      throw std::runtime_error("boom");
    }
    if (ev.type() == "REJECT_EX") {
      throw evh::Reject("bad payload");
    }
    if (ev.type() == "PENDING") {
      evh::Completion done = call.defer();
      host().post([done] { done.complete(evh::Result::ok()); });
      return evh::Result::pending();
    }
    if (ev.type() == "DROP") {
      call.defer();
      return evh::Result::pending();
    }
    return evh::Result::ok();
  }

 private:
  evh::Metric handled_;
  evh::Metric ok_;
  evh::Metric other_;
  evh::Metric work_;
  bool health_throws_;
};

}  // namespace

EVH_PLUGIN(OkCpp, "ok_cpp", "2.0.0")
