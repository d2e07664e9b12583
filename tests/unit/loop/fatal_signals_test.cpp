// The fatal-signal line: what it says from the crashing thread's record,
// and the handler itself in a death test (the real evhost: signals_test).
#include "loop/fatal_signals.h"

#include "loop/current_call.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdint>
#include <string>
#include <thread>

namespace evh {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

evh_str str(const char* s) { return evh_str{s, std::char_traits<char>::length(s)}; }

std::string reportLine(int signum, bool has_address = false, uintptr_t address = 0, size_t size = 2048) {
  std::string out(size, '\0');
  out.resize(formatFatalLine(signum, has_address, address, out.data(), out.size()));
  return out;
}

evh_event crashEvent(const char* id, const char* type, const char* channel) {
  evh_event ev{};
  ev.struct_size = sizeof ev;
  ev.event_id = str(id);
  ev.event_type = str(type);
  ev.channel = str(channel);
  ev.payload = str(R"({"secret":"hunter2"})");
  return ev;
}

TEST(FatalSignalsTest, NamesThePluginInstanceAndEventOfTheCrashingThreadsCall) {
  const evh_event ev = crashEvent("e-42", "ORDER_PLACED", "jollyjet:events:orders");
  const CallSite site{"orders", "handle", &ev, "recorder"};
  ThreadCallScope scope(site);
  EXPECT_EQ(reportLine(SIGSEGV, true, 0x10),
            "evhost: fatal signal SIGSEGV in plugin \"recorder\" (instance \"orders\") while handling event e-42 (type "
            "ORDER_PLACED, channel jollyjet:events:orders); fault address 0x10\n");
  EXPECT_EQ(reportLine(SIGFPE, true, 0x7f00deadbeef),
            "evhost: fatal signal SIGFPE in plugin \"recorder\" (instance \"orders\") while handling event e-42 (type "
            "ORDER_PLACED, channel jollyjet:events:orders); at instruction 0x7f00deadbeef\n");
  EXPECT_EQ(reportLine(SIGABRT),
            "evhost: fatal signal SIGABRT in plugin \"recorder\" (instance \"orders\") while handling event e-42 (type "
            "ORDER_PLACED, channel jollyjet:events:orders)\n");
  EXPECT_THAT(reportLine(SIGSEGV), Not(HasSubstr("hunter2")));
}

TEST(FatalSignalsTest, ACallbackInitOrShutdownIsNamedWithoutAnEvent) {
  const CallSite site{"orders", "reply callback", nullptr, "recorder"};
  ThreadCallScope scope(site);
  EXPECT_EQ(reportLine(SIGBUS, true, 0),
            "evhost: fatal signal SIGBUS in plugin \"recorder\" (instance \"orders\") while running its reply "
            "callback; fault address 0x0\n");
  {
    const CallSite inner{"orders", "init", nullptr, "recorder"};
    ThreadCallScope nested(inner);
    EXPECT_THAT(reportLine(SIGILL), HasSubstr("while running its init\n"));
  }
  EXPECT_THAT(reportLine(SIGILL), HasSubstr("while running its reply callback\n")) << "the outer call is back";
}

TEST(FatalSignalsTest, OutsideAPluginCallItSaysSoAndEachThreadHasItsOwnRecord) {
  const CallSite site{"orders", "handle", nullptr, "recorder"};
  ThreadCallScope scope(site);
  std::string other;
  std::thread([&] { other = reportLine(SIGSEGV, true, 0x20); }).join();
  EXPECT_THAT(other, MatchesRegex("evhost: fatal signal SIGSEGV outside any plugin call \\(thread [0-9]+\\); fault "
                                  "address 0x20\n"));
}

TEST(FatalSignalsTest, ValuesCannotBreakTheLineAndLongOnesAreCut) {
  const std::string long_id(300, 'x');
  const evh_event ev = crashEvent(long_id.c_str(), "T\n2024 forged line", "ch\"\x1b[31m");
  const CallSite site{"in\"st", "handle", &ev, "lib"};
  ThreadCallScope scope(site);
  const std::string text = reportLine(SIGSEGV, true, 1);
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_THAT(text, HasSubstr("(instance \"in\\x22st\")"));
  EXPECT_THAT(text, HasSubstr("event " + std::string(200, 'x') +
                              "... (type T\\x0a2024 forged line, channel "
                              "ch\\x22\\x1b[31m)"));
  // A buffer too small: cut, still one line.
  const std::string cut = reportLine(SIGSEGV, true, 1, 40);
  EXPECT_EQ(cut, "evhost: fatal signal SIGSEGV in plugin \n");
}

TEST(FatalSignalsTest, SignalNames) {
  EXPECT_STREQ(fatalSignalName(SIGSEGV), "SIGSEGV");
  EXPECT_STREQ(fatalSignalName(SIGABRT), "SIGABRT");
  EXPECT_EQ(fatalSignalName(SIGTERM), nullptr);
}

// The handler in a child process: one line on stderr, then the signal's own
// death (the re-raise), on a thread's alternate stack.
void crashInCall() {
  installFatalSignalHandler();
  AltSignalStack stack;
  const evh_event ev = crashEvent("e-7", "CRASH", "jollyjet:events:product");
  const CallSite site{"crashy", "handle", &ev, "scripted"};
  ThreadCallScope scope(site);
  static volatile uintptr_t address = 0x18;
  *reinterpret_cast<volatile int*>(address) = 1;
}

TEST(FatalSignalsDeathTest, TheHandlerWritesItsLineAndTheSignalEndsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(crashInCall(), ::testing::KilledBySignal(SIGSEGV),
              "evhost: fatal signal SIGSEGV in plugin \"scripted\" \\(instance \"crashy\"\\) while handling event e-7 "
              "\\(type CRASH, channel jollyjet:events:product\\); fault address 0x18");
  EXPECT_EXIT(
      [] {
        installFatalSignalHandler();
        std::thread([] { std::abort(); }).join();
      }(),
      ::testing::KilledBySignal(SIGABRT), "evhost: fatal signal SIGABRT outside any plugin call \\(thread [0-9]+\\)\n");
}

}  // namespace
}  // namespace evh
