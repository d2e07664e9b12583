// log_field: a test plugin that logs one string field of each event's payload as it is -- newlines, escape sequences
// and all -- through the host's log API, as a careless plugin would. Text logs must not let it forge a line.
//
// Config: {"field": "orderId"}. Logs at info: "<field>=<value>"; answers OK (also when the field is missing or not a
// string, logging "<field> missing").
#include <evh/plugin.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace {

class LogField final : public evh::Plugin {
 public:
  LogField(evh::Host host, std::string_view config) : Plugin(host) {
    field_ = nlohmann::json::parse(config).value("field", "orderId");
  }

  evh::Result handle(const evh::Event& ev, evh::Call&) override {
    const auto payload = nlohmann::json::parse(ev.payload(), nullptr, false);
    const auto it = payload.is_object() ? payload.find(field_) : payload.end();
    if (it == payload.end() || !it->is_string()) {
      host().info(field_ + " missing");
    } else {
      host().info(field_ + "=" + it->get<std::string>());
    }
    return evh::Result::ok();
  }

 private:
  std::string field_;
};

}  // namespace

EVH_PLUGIN(LogField, "log_field", "1.0.0")
