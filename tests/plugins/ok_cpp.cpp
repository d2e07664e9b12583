// ok_cpp: a C++ test plugin exercising the wrapper's exception and pending paths.
// Event types: "THROW" throws std::runtime_error("boom"); "REJECT_EX" throws
// evh::Reject("bad payload"); "PENDING" defers and completes OK through
// Host::post; "DROP" defers and drops the Completion; else OK. The
// constructor throws when the config contains "throw_in_ctor".
#include <evh/plugin.hpp>

#include <stdexcept>
#include <string>

namespace {

class OkCpp final : public evh::Plugin {
 public:
  static constexpr uint32_t kFlags = EVH_PLUGIN_BLOCKING;
  static constexpr uint32_t kMaxConcurrency = 2;
  static constexpr const char* kDescription = "test plugin in C++";

  OkCpp(evh::Host host, std::string_view config) : Plugin(host), handled_(host.counter("handled")) {
    if (config.find("throw_in_ctor") != std::string_view::npos) {
      throw std::runtime_error("config says throw_in_ctor");
    }
  }

  evh::Result handle(const evh::Event& ev, evh::Call& call) override {
    handled_.add();
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
};

}  // namespace

EVH_PLUGIN(OkCpp, "ok_cpp", "2.0.0")
