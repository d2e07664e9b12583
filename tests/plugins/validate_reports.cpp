// validate_reports: a C++ plugin whose validateConfig() and constructor share
// one parser (as the bundled plugins do), for the host's config checks.
// Config: size (integer 1..100), name (non-empty string), nested.level
// (integer 0..9), password (a string, never echoed: its check quotes it on
// purpose, so that the host's masking of ${VAR} values shows), throw (true:
// validateConfig() throws). Every other key is unknown. The constructor logs
// "validate_reports init", so that a test sees whether init ran.
#include <evh/plugin.hpp>

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace {

using Json = nlohmann::json;

struct Settings {
  int64_t size = 1;
  std::string name = "x";
};

Settings parse(std::string_view text, evh::ConfigErrors& errors) {
  Settings s;
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object()) {
    errors.add("", "must be a map");
    return s;
  }
  for (const auto& [key, v] : j.items()) {
    const std::string at = evh::pointerJoin("", key);
    if (key == "size") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 100) {
        errors.add(at, "must be an integer from 1 to 100, got " + v.dump());
      } else {
        s.size = v.get<int64_t>();
      }
    } else if (key == "name") {
      if (!v.is_string() || v.get<std::string>().empty()) {
        errors.add(at, "must be a non-empty string, got " + v.dump());
      } else {
        s.name = v.get<std::string>();
      }
    } else if (key == "nested") {
      if (!v.is_object()) {
        errors.add(at, "must be a map");
        continue;
      }
      for (const auto& [sub, w] : v.items()) {
        if (sub != "level") {
          errors.add(evh::pointerJoin(at, sub), "unknown key (known: level)");
        } else if (!w.is_number_integer() || w.get<int64_t>() < 0 || w.get<int64_t>() > 9) {
          errors.add(evh::pointerJoin(at, sub), "must be an integer from 0 to 9, got " + w.dump());
        }
      }
    } else if (key == "password") {
      if (!v.is_string() || v.get<std::string>().size() < 12) {
        errors.add(at, "must be at least 12 characters, got " + v.dump());  // quoting it on purpose: see above
      }
    } else if (key == "throw") {
      if (v == true) {
        throw std::runtime_error("the parser fell over");
      }
    } else {
      errors.add(at, "unknown key (known: size, name, nested, password, throw)");
    }
  }
  return s;
}

class ValidateReports final : public evh::Plugin {
 public:
  static void validateConfig(std::string_view config, evh::ConfigErrors& errors) { parse(config, errors); }

  ValidateReports(evh::Host host, std::string_view config) : Plugin(host) {
    evh::ConfigErrors errors;
    settings_ = parse(config, errors);
    errors.throwIfAny();
    host.info("validate_reports init");
  }

  evh::Result handle(const evh::Event&, evh::Call&) override { return evh::Result::ok(); }

 private:
  Settings settings_;
};

}  // namespace

EVH_PLUGIN(ValidateReports, "validate_reports", "1.0.0")
