// ${VAR} / ${VAR:-default} / $$ expansion of configuration values.
#include "config/expand.h"

#include <string>
#include <utility>

namespace evh::config {
namespace {

bool isNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }

bool isNameChar(char c) { return isNameStart(c) || (c >= '0' && c <= '9'); }

// A recursive-descent scanner, because a default may hold references of its
// own: ${REDIS_URL:-redis://${REDIS_HOST:-localhost}:6379}.
class Expander {
 public:
  Expander(std::string_view text, const EnvLookup& env, Quoting quoting) : text_(text), env_(env), quoting_(quoting) {}

  Expansion run() {
    Expansion out;
    from_environment_ = &out.from_environment;
    if (!parseText(out.value, out.errors, false)) {
      // A malformed reference makes the rest of the value meaningless; report
      // only that, not the unset variables met before it.
      out.value.clear();
      out.errors.assign(1, malformed_);
    }
    return out;
  }

 private:
  // Appends the expansion of the text from pos_ to `out`: up to the end of the
  // input, or (when `nested`) up to the '}' that closes a default, which is
  // left for the caller to consume. Unset variables are appended to `unset`.
  // Returns false, with malformed_ set, on a syntax error.
  bool parseText(std::string& out, std::vector<std::string>& unset, bool nested) {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (nested && c == '}') {
        return true;
      }
      if (c == '$' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '$') {
        out += '$';
        pos_ += 2;
      } else if (c == '$' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '{') {
        if (!parseReference(out, unset)) {
          return false;
        }
      } else {
        out += c;
        ++pos_;
      }
    }
    if (nested) {
      unterminated_ = true;  // the enclosing reference words the message
      return false;
    }
    return true;
  }

  // Parses one reference starting at "${" and appends its value.
  bool parseReference(std::string& out, std::vector<std::string>& unset) {
    const size_t start = pos_;
    pos_ += 2;
    const size_t name_begin = pos_;
    if (pos_ < text_.size() && isNameStart(text_[pos_])) {
      while (pos_ < text_.size() && isNameChar(text_[pos_])) {
        ++pos_;
      }
    }
    const std::string name(text_.substr(name_begin, pos_ - name_begin));
    if (name.empty()) {
      malformed_ = "malformed variable reference " + snippet(start) +
                   ": expected a variable name ([A-Za-z_][A-Za-z0-9_]*) after \"${\"";
      return false;
    }
    if (pos_ >= text_.size()) {
      malformed_ = "malformed variable reference " + snippet(start) + ": missing closing \"}\"";
      return false;
    }
    if (text_[pos_] == '}') {
      ++pos_;
      const std::optional<std::string> value = env_(name);
      if (value) {
        out += *value;
        taken(*value);
      } else {
        unset.push_back("variable \"" + name + "\" is not set and has no default");
      }
      return true;
    }
    if (text_.substr(pos_, 2) == ":-") {
      pos_ += 2;
      // Each default nested in a default is a level of recursion: bounded,
      // so that no value (200,000 "${A:-" overflowed the stack) can crash
      // the loader, and far beyond any real use.
      if (++nesting_ > kMaxNesting) {
        malformed_ = "malformed variable reference " + snippet(start) + ": defaults nested deeper than " +
                     std::to_string(kMaxNesting) + " levels";
        return false;
      }
      std::string fallback;
      std::vector<std::string> fallback_unset;
      const bool parsed = parseText(fallback, fallback_unset, true);
      --nesting_;
      if (!parsed) {
        if (unterminated_) {
          unterminated_ = false;
          malformed_ = "malformed variable reference " + snippet(start) + ": missing closing \"}\"";
        }
        return false;
      }
      ++pos_;  // the closing '}'
      const std::optional<std::string> value = env_(name);
      if (value && !value->empty()) {
        out += *value;
        taken(*value);
      } else {
        // The default's own unset variables matter only when it is used.
        out += fallback;
        for (std::string& e : fallback_unset) {
          unset.push_back(std::move(e));
        }
      }
      return true;
    }
    malformed_ =
        "malformed variable reference " + snippet(start) + ": expected \"}\" or \":-\" after the variable name";
    return false;
  }

  void taken(const std::string& value) {
    if (!value.empty()) {
      from_environment_->push_back(value);
    }
  }

  // The reference text from `start` through its closing brace (or the end),
  // quoted and capped so that a long value does not swamp the message;
  // nothing of a secret's text (what follows a "${" in a password may be
  // the rest of the password).
  std::string snippet(size_t start) const {
    if (quoting_ == Quoting::Never) {
      return "(in a secret value, not shown)";
    }
    size_t end = text_.find('}', start);
    end = end == std::string_view::npos ? text_.size() : end + 1;
    constexpr size_t kMax = 60;
    if (end - start > kMax) {
      return "\"" + std::string(text_.substr(start, kMax)) + "...\"";
    }
    return "\"" + std::string(text_.substr(start, end - start)) + "\"";
  }

  static constexpr size_t kMaxNesting = 16;

  std::string_view text_;
  const EnvLookup& env_;
  Quoting quoting_;
  size_t pos_ = 0;
  size_t nesting_ = 0;         // defaults being parsed, one inside the other
  bool unterminated_ = false;  // input ended inside a default
  std::string malformed_;
  std::vector<std::string>* from_environment_ = nullptr;
};

}  // namespace

Expansion expandVariables(std::string_view text, const EnvLookup& env, Quoting quoting) {
  return Expander(text, env, quoting).run();
}

}  // namespace evh::config
