// product: the plan's product event handler (Step 2.2), written with the C++ SDK wrapper.
//
// Today it logs one structured line per product event, as the plan's
// handlers do. Cache invalidation, notifications and the read model come with
// the JollyJet plugins issue.
#include <evh/plugin.hpp>

#include <string>

namespace {

class Product final : public evh::Plugin {
 public:
  static constexpr const char* kDescription = "JollyJet product events: PRODUCT_CREATED/UPDATED/DELETED";

  Product(evh::Host host, std::string_view /*config_json*/)
      : Plugin(host), handled_(host.counter("events_handled", "product events handled")) {}

  evh::Result handle(const evh::Event& ev, evh::Call& /*call*/) override {
    if (ev.type() != "PRODUCT_CREATED" && ev.type() != "PRODUCT_UPDATED" && ev.type() != "PRODUCT_DELETED") {
      return evh::Result::reject("product: unsupported eventType " + std::string(ev.type()));
    }
    if (host().logEnabled(evh::LogLevel::Info)) {
      host().info(std::string(ev.type()) + " eventId=" + std::string(ev.id()) +
                  " correlationId=" + std::string(ev.correlationId()) + " payload=" + std::string(ev.payload()));
    }
    handled_.add();
    return evh::Result::ok();
  }

 private:
  evh::Metric handled_;
};

}  // namespace

EVH_PLUGIN(Product, "product", "0.1.0")
