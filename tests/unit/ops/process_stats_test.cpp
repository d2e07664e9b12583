// process_* series from /proc, and evhost_build_info.
#include "ops/process_stats.h"
#include "ops/build_info.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>

namespace evh::ops {
namespace {

TEST(ProcessStatsTest, ParsesProcStatAfterTheLastParenthesis) {
  // A command name with spaces and parentheses of its own; utime 250,
  // stime 150 ticks; starttime 1000 ticks; vsize 3133440; rss 412 pages.
  const std::string stat =
      "8281 (my (odd) name) R 8279 8279 2528 0 -1 4194304 98 0 0 0 250 150 0 0 20 0 1 0 1000 3133440 412 "
      "18446744073709551615 1 2 3 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
  ProcStat ps;
  ASSERT_TRUE(parseProcStat(stat, 100, 4096, 1700000000, ps));
  EXPECT_DOUBLE_EQ(ps.cpu_seconds, 4.0);
  EXPECT_DOUBLE_EQ(ps.start_time_seconds, 1700000010.0);
  EXPECT_EQ(ps.virtual_bytes, 3133440);
  EXPECT_EQ(ps.resident_bytes, 412 * 4096);
}

TEST(ProcessStatsTest, RefusesATruncatedOrGarbledLine) {
  ProcStat ps;
  EXPECT_FALSE(parseProcStat("", 100, 4096, 0, ps));
  EXPECT_FALSE(parseProcStat("1 (x) R 1 1 1", 100, 4096, 0, ps));
  EXPECT_FALSE(parseProcStat("1 (x) R 1 1 1 0 -1 0 0 0 0 0 x 1 0 0 20 0 1 0 1 1 1", 100, 4096, 0, ps));
  EXPECT_FALSE(parseProcStat("no parenthesis at all", 100, 4096, 0, ps));
}

TEST(ProcessStatsTest, ReadsThisProcess) {
  std::map<std::string, FamilySample> by_name;
  for (auto& f : processFamilies()) {
    ASSERT_EQ(f.series.size(), 1U) << f.name;
    by_name[f.name] = f;
  }
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
                           "process_start_time_seconds", "process_open_fds", "process_max_fds"}) {
    ASSERT_EQ(by_name.count(name), 1U) << name;
  }
  EXPECT_EQ(by_name["process_cpu_seconds_total"].kind, Kind::Counter);
  EXPECT_GT(by_name["process_resident_memory_bytes"].series[0].value, 1 << 20);
  EXPECT_GT(by_name["process_virtual_memory_bytes"].series[0].value,
            by_name["process_resident_memory_bytes"].series[0].value);
  EXPECT_GE(by_name["process_open_fds"].series[0].value, 3);  // stdin, stdout, stderr at least
  EXPECT_GT(by_name["process_max_fds"].series[0].value, by_name["process_open_fds"].series[0].value);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double started = by_name["process_start_time_seconds"].series[0].value;
  EXPECT_LE(started, now + 1);
  EXPECT_GT(started, now - 3600);  // this test process started within the hour
}

TEST(ProcessStatsTest, BuildInfoNamesTheVersionAndTheAbi) {
  const FamilySample f = buildInfo();
  EXPECT_EQ(f.name, "evhost_build_info");
  EXPECT_EQ(f.kind, Kind::Info);
  ASSERT_EQ(f.series.size(), 1U);
  const Labels& labels = f.series[0].labels;
  ASSERT_EQ(labels.size(), 2U);
  EXPECT_EQ(labels[0].first, "abi");
  EXPECT_EQ(labels[0].second.rfind("1.", 0), 0U) << labels[0].second;
  EXPECT_EQ(labels[1].first, "version");
  EXPECT_FALSE(labels[1].second.empty());
  EXPECT_EQ(f.series[0].exact, 1);
}

}  // namespace
}  // namespace evh::ops
