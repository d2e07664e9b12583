// evhost's and evhctl's command lines are CLI11's: options, subcommands, values, --help and --version. What is
// ours is how a bad command line ends (the same for both programs) and the checks CLI11 has no validator for.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <optional>
#include <string>

namespace evh::cli {

// The exit status of bad arguments, in both programs.
constexpr int kBadArguments = 2;

// Parses argv into `app` (whose callbacks run as part of it). Returns nullopt
// to go on, or the exit status to leave with: 0 after --help or --version
// (printed on stdout by CLI11), 2 after bad arguments: "<program>: <what was
// wrong>" on stderr, then the help of the (sub)command given.
inline std::optional<int> parseCommandLine(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e);
    }
    // help() is that of the deepest subcommand given ("evhctl dlq list").
    std::fprintf(stderr, "%s: %s\n\n%s", app.get_name().c_str(), e.what(), app.help().c_str());
    return kBadArguments;
  }
}

// Bad arguments that only the command can tell (two options that go
// together, a value missing from the environment as well): thrown from a
// (sub)command's callback, it ends like any other parse error.
[[noreturn]] inline void badArguments(const std::string& message) { throw CLI::ValidationError(message); }

// A value that may not be empty: "--type: needs a non-empty value".
inline CLI::Validator nonEmpty() {
  return CLI::Validator([](const std::string& v) { return v.empty() ? std::string("needs a non-empty value") : ""; },
                        "");
}

}  // namespace evh::cli
