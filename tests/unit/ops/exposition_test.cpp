// The /metrics renderer: the text format 0.0.4 and OpenMetrics 1.0.0 line by
// line, numbers, escaping, histograms, and the Accept negotiation.
#include "ops/exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace evh::ops {
namespace {

FamilySample family(std::string name, std::string help, Kind kind) {
  FamilySample f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.kind = kind;
  return f;
}

SeriesSample exact(int64_t v, Labels labels = {}) {
  SeriesSample s;
  s.labels = std::move(labels);
  s.exact = v;
  s.value = static_cast<double>(v);
  return s;
}

SeriesSample computed(double v, Labels labels = {}) {
  SeriesSample s;
  s.labels = std::move(labels);
  s.value = v;
  return s;
}

// A histogram with bounds 0.005, 1, 2.5 and, per bucket, `counts` (not
// cumulative), summing to `sum`.
FamilySample histogram(const std::vector<uint64_t>& counts, double sum, Labels labels = {}) {
  FamilySample f = family("evhost_x_seconds", "Durations.", Kind::Histogram);
  f.bounds = {0.005, 1, 2.5};
  SeriesSample s;
  s.labels = std::move(labels);
  uint64_t running = 0;
  for (uint64_t c : counts) {
    running += c;
    s.buckets.push_back(running);
  }
  s.count = running;
  s.sum = sum;
  f.series.push_back(s);
  return f;
}

class ExpositionTest : public ::testing::Test {};

TEST_F(ExpositionTest, FormatsDoublesAsGoDoes) {
  EXPECT_EQ(formatDouble(0), "0");
  EXPECT_EQ(formatDouble(-0.0), "0");
  EXPECT_EQ(formatDouble(1), "1");
  EXPECT_EQ(formatDouble(-3), "-3");
  EXPECT_EQ(formatDouble(0.5), "0.5");
  EXPECT_EQ(formatDouble(0.005), "0.005");
  EXPECT_EQ(formatDouble(0.0001), "0.0001");
  EXPECT_EQ(formatDouble(0.00001), "1e-05");
  EXPECT_EQ(formatDouble(100000), "100000");
  EXPECT_EQ(formatDouble(1e6), "1e+06");
  EXPECT_EQ(formatDouble(1.5e6), "1.5e+06");
  EXPECT_EQ(formatDouble(123456789), "1.23456789e+08");
  EXPECT_EQ(formatDouble(1e-10), "1e-10");
  EXPECT_EQ(formatDouble(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(formatDouble(1e300 * 10), "1e+301");
  EXPECT_EQ(formatDouble(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatDouble(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatDouble(std::nan("")), "NaN");
}

TEST_F(ExpositionTest, CounterInTextFormat) {
  FamilySample f = family("evhost_messages_received_total", "Messages received.", Kind::Counter);
  f.series = {exact(3, {{"channel", "a"}}), exact(0, {{"channel", "b"}})};
  EXPECT_EQ(render({f}, Format::Prometheus),
            "# HELP evhost_messages_received_total Messages received.\n"
            "# TYPE evhost_messages_received_total counter\n"
            "evhost_messages_received_total{channel=\"a\"} 3\n"
            "evhost_messages_received_total{channel=\"b\"} 0\n");
}

TEST_F(ExpositionTest, CounterInOpenMetricsDropsTotalFromTheFamilyAndEndsWithEof) {
  FamilySample f = family("evhost_messages_received_total", "Messages received.", Kind::Counter);
  f.series = {exact(3, {{"channel", "a"}})};
  EXPECT_EQ(render({f}, Format::OpenMetrics),
            "# TYPE evhost_messages_received counter\n"
            "# HELP evhost_messages_received Messages received.\n"
            "evhost_messages_received_total{channel=\"a\"} 3\n"
            "# EOF\n");
}

TEST_F(ExpositionTest, OpenMetricsCounterWithoutTotalGetsItOnItsSample) {
  FamilySample f = family("evhost_odd", "Odd.", Kind::Counter);
  f.series = {exact(1)};
  EXPECT_EQ(render({f}, Format::OpenMetrics),
            "# TYPE evhost_odd counter\n# HELP evhost_odd Odd.\nevhost_odd_total 1\n# EOF\n");
  EXPECT_EQ(render({f}, Format::Prometheus), "# HELP evhost_odd Odd.\n# TYPE evhost_odd counter\nevhost_odd 1\n");
}

TEST_F(ExpositionTest, EmptyExpositions) {
  EXPECT_EQ(render(std::vector<FamilySample>{}, Format::Prometheus), "");
  EXPECT_EQ(render(std::vector<FamilySample>{}, Format::OpenMetrics), "# EOF\n");
}

TEST_F(ExpositionTest, GaugesPrintExactIntegersAndComputedDoubles) {
  FamilySample f = family("evhost_g", "G.", Kind::Gauge);
  f.series = {exact(-7, {{"k", "a"}}),
              exact(9007199254740993, {{"k", "b"}}),  // 2^53 + 1: no double holds it
              computed(0.25, {{"k", "c"}}),
              computed(std::nan(""), {{"k", "d"}}),
              computed(std::numeric_limits<double>::infinity(), {{"k", "e"}}),
              computed(0, {{"k", "f"}}),
              computed(2, {{"k", "g"}})};
  EXPECT_EQ(render({f}, Format::Prometheus),
            "# HELP evhost_g G.\n# TYPE evhost_g gauge\n"
            "evhost_g{k=\"a\"} -7\n"
            "evhost_g{k=\"b\"} 9007199254740993\n"
            "evhost_g{k=\"c\"} 0.25\n"
            "evhost_g{k=\"d\"} NaN\n"
            "evhost_g{k=\"e\"} +Inf\n"
            "evhost_g{k=\"f\"} 0\n"
            "evhost_g{k=\"g\"} 2\n");
}

TEST_F(ExpositionTest, SeriesWithoutLabelsHaveNoBraces) {
  FamilySample f = family("evhost_up", "Up.", Kind::Gauge);
  f.series = {exact(1)};
  EXPECT_EQ(render({f}, Format::Prometheus), "# HELP evhost_up Up.\n# TYPE evhost_up gauge\nevhost_up 1\n");
}

TEST_F(ExpositionTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  FamilySample f = family("evhost_c_total", "C.", Kind::Counter);
  f.series = {exact(1, {{"a", "x\\y"}, {"b", "say \"hi\""}, {"c", "two\nlines"}, {"d", "tab\tand ü"}})};
  const std::string line = "evhost_c_total{a=\"x\\\\y\",b=\"say \\\"hi\\\"\",c=\"two\\nlines\",d=\"tab\tand ü\"} 1\n";
  EXPECT_NE(render({f}, Format::Prometheus).find(line), std::string::npos) << render({f}, Format::Prometheus);
  EXPECT_NE(render({f}, Format::OpenMetrics).find(line), std::string::npos) << render({f}, Format::OpenMetrics);
}

TEST_F(ExpositionTest, HelpEscapesBackslashAndNewlineAndInOpenMetricsTheQuote) {
  FamilySample f = family("evhost_c_total", "A \\ b\nc \"d\"", Kind::Counter);
  f.series = {exact(1)};
  EXPECT_NE(render({f}, Format::Prometheus).find("# HELP evhost_c_total A \\\\ b\\nc \"d\"\n"), std::string::npos);
  EXPECT_NE(render({f}, Format::OpenMetrics).find("# HELP evhost_c A \\\\ b\\nc \\\"d\\\"\n"), std::string::npos);
}

TEST_F(ExpositionTest, EmptyHelpHasNoHelpLine) {
  FamilySample f = family("evhost_g", "", Kind::Gauge);
  f.series = {exact(1)};
  EXPECT_EQ(render({f}, Format::Prometheus), "# TYPE evhost_g gauge\nevhost_g 1\n");
}

TEST_F(ExpositionTest, InvalidUtf8IsReplacedNotPassedOn) {
  FamilySample f = family("evhost_g", "bad \xff\xfe and \xc3\xbc", Kind::Gauge);
  f.series = {exact(1, {{"plugin", "p\xc3"}, {"ok", "\xc3\xbc"}})};
  const std::string text = render({f}, Format::Prometheus);
  EXPECT_NE(text.find("# HELP evhost_g bad ?? and ??\n"), std::string::npos) << text;
  EXPECT_NE(text.find("evhost_g{plugin=\"p?\",ok=\"\xc3\xbc\"} 1\n"), std::string::npos) << text;
}

TEST_F(ExpositionTest, HistogramInTextFormat) {
  const FamilySample f = histogram({1, 2, 0, 4}, 12.5, {{"plugin", "p"}});
  EXPECT_EQ(render({f}, Format::Prometheus),
            "# HELP evhost_x_seconds Durations.\n"
            "# TYPE evhost_x_seconds histogram\n"
            "evhost_x_seconds_bucket{plugin=\"p\",le=\"0.005\"} 1\n"
            "evhost_x_seconds_bucket{plugin=\"p\",le=\"1\"} 3\n"
            "evhost_x_seconds_bucket{plugin=\"p\",le=\"2.5\"} 3\n"
            "evhost_x_seconds_bucket{plugin=\"p\",le=\"+Inf\"} 7\n"
            "evhost_x_seconds_sum{plugin=\"p\"} 12.5\n"
            "evhost_x_seconds_count{plugin=\"p\"} 7\n");
}

TEST_F(ExpositionTest, HistogramInOpenMetricsHasCanonicalLeValues) {
  const FamilySample f = histogram({0, 0, 0, 0}, 0);
  EXPECT_EQ(render({f}, Format::OpenMetrics),
            "# TYPE evhost_x_seconds histogram\n"
            "# HELP evhost_x_seconds Durations.\n"
            "evhost_x_seconds_bucket{le=\"0.005\"} 0\n"
            "evhost_x_seconds_bucket{le=\"1.0\"} 0\n"
            "evhost_x_seconds_bucket{le=\"2.5\"} 0\n"
            "evhost_x_seconds_bucket{le=\"+Inf\"} 0\n"
            "evhost_x_seconds_sum 0\n"
            "evhost_x_seconds_count 0\n"
            "# EOF\n");
}

TEST_F(ExpositionTest, CanonicalLeFollowsTheOpenMetricsExamples) {
  FamilySample f = family("evhost_h", "H.", Kind::Histogram);
  f.bounds = {0.001, 0.1, 1, 10, 100000, 1e6, 1e-05};
  SeriesSample s;
  s.buckets.assign(f.bounds.size() + 1, 0);
  f.series = {s};
  const std::string text = render({f}, Format::OpenMetrics);
  for (const char* le : {"0.001", "0.1", "1.0", "10.0", "100000.0", "1e+06", "1e-05", "+Inf"}) {
    EXPECT_NE(text.find(std::string("le=\"") + le + "\""), std::string::npos) << le << "\n" << text;
  }
}

TEST_F(ExpositionTest, InfoIsAGaugeInTextAndAnInfoInOpenMetrics) {
  FamilySample f = family("evhost_build_info", "Build.", Kind::Info);
  f.series = {exact(1, {{"abi", "1.0"}, {"version", "0.1.0"}})};
  EXPECT_EQ(render({f}, Format::Prometheus),
            "# HELP evhost_build_info Build.\n# TYPE evhost_build_info gauge\n"
            "evhost_build_info{abi=\"1.0\",version=\"0.1.0\"} 1\n");
  EXPECT_EQ(render({f}, Format::OpenMetrics),
            "# TYPE evhost_build info\n# HELP evhost_build Build.\n"
            "evhost_build_info{abi=\"1.0\",version=\"0.1.0\"} 1\n# EOF\n");
}

TEST_F(ExpositionTest, RendersWhatTheRegistryCollects) {
  Registry registry;
  Scope scope(registry);
  scope.counter("evhost_a_total", "A.", {{"channel", "c"}}).inc(5);
  scope.computedGauge("evhost_b", "B.", [] { return 1.5; });
  scope.histogram("evhost_c_seconds", "C.", Buckets{{100, 1000000}, 1e6}).observe(50);
  EXPECT_EQ(render(registry.samples(), Format::Prometheus),
            "# HELP evhost_a_total A.\n# TYPE evhost_a_total counter\nevhost_a_total{channel=\"c\"} 5\n"
            "# HELP evhost_b B.\n# TYPE evhost_b gauge\nevhost_b 1.5\n"
            "# HELP evhost_c_seconds C.\n# TYPE evhost_c_seconds histogram\n"
            "evhost_c_seconds_bucket{le=\"0.0001\"} 1\nevhost_c_seconds_bucket{le=\"1\"} 1\n"
            "evhost_c_seconds_bucket{le=\"+Inf\"} 1\nevhost_c_seconds_sum 5e-05\nevhost_c_seconds_count 1\n");
}

TEST_F(ExpositionTest, ContentTypes) {
  EXPECT_STREQ(contentType(Format::Prometheus), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_STREQ(contentType(Format::OpenMetrics), "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST_F(ExpositionTest, NegotiatesOpenMetricsForPrometheus) {
  // What Prometheus 2.x sends when it scrapes.
  EXPECT_EQ(negotiate("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                      "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::OpenMetrics);
  EXPECT_EQ(negotiate("application/openmetrics-text"), Format::OpenMetrics);
  EXPECT_EQ(negotiate("Application/OpenMetrics-Text; Version=\"1.0.0\""), Format::OpenMetrics);
  EXPECT_EQ(negotiate("application/openmetrics-text; version=0.0.1"), Format::OpenMetrics);
  EXPECT_EQ(negotiate("text/plain;q=0.5, application/openmetrics-text;q=0.6"), Format::OpenMetrics);
  EXPECT_EQ(negotiate("application/openmetrics-text, text/plain"), Format::OpenMetrics);
}

TEST_F(ExpositionTest, NegotiatesTheTextFormatOtherwise) {
  EXPECT_EQ(negotiate(""), Format::Prometheus);
  EXPECT_EQ(negotiate("*/*"), Format::Prometheus);
  EXPECT_EQ(negotiate("text/plain"), Format::Prometheus);
  EXPECT_EQ(negotiate("text/plain;version=0.0.4"), Format::Prometheus);
  EXPECT_EQ(negotiate("application/json"), Format::Prometheus);
  EXPECT_EQ(negotiate("application/openmetrics-text;q=0"), Format::Prometheus);
  EXPECT_EQ(negotiate("application/openmetrics-text;q=bogus"), Format::Prometheus);
  EXPECT_EQ(negotiate("application/openmetrics-text;version=2.0.0"), Format::Prometheus);
  EXPECT_EQ(negotiate("text/plain, application/openmetrics-text"), Format::Prometheus);
  EXPECT_EQ(negotiate("application/openmetrics-text; q=0.3, text/plain; q=0.5"), Format::Prometheus);
  EXPECT_EQ(negotiate(",,;;=,"), Format::Prometheus);
}

}  // namespace
}  // namespace evh::ops
