// The stats registry: identity of series, refusals, removal with its scope,
// histogram buckets, and writers on several threads while collecting.
#include "ops/stats.h"
#include "support/stats_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>

namespace evh::ops {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(StatsTest, TheSameNameAndLabelsGiveTheSameSeries) {
  Registry r;
  Scope a(r, {{"channel", "orders"}});
  Scope b(r);
  Counter first = a.counter("evh_test_events_total", "events");
  // The same labels, given another way and in another order.
  Counter second = b.counter("evh_test_events_total", "events", {{"channel", "orders"}});
  first.inc();
  second.inc(2);
  EXPECT_EQ(first.value(), 3);
  EXPECT_EQ(second.value(), 3);
  Counter other = b.counter("evh_test_events_total", "events", {{"channel", "audit"}});
  other.inc();
  EXPECT_EQ(test::renderStats(r),
            "# HELP evh_test_events_total events\n"
            "# TYPE evh_test_events_total counter\n"
            "evh_test_events_total{channel=\"audit\"} 1\n"
            "evh_test_events_total{channel=\"orders\"} 3\n");
}

TEST(StatsTest, LabelsAreSortedByName) {
  Registry r;
  Scope s(r, {{"plugin", "p"}});
  s.gauge("evh_test_g", "g", {{"channel", "c"}}).set(-4);
  EXPECT_THAT(test::renderStats(r), HasSubstr("evh_test_g{channel=\"c\",plugin=\"p\"} -4\n"));
}

TEST(StatsTest, AClashIsRefused) {
  Registry r;
  Scope s(r);
  s.counter("evh_test_x_total", "x");
  EXPECT_THROW(s.gauge("evh_test_x_total", "x"), StatsError);                        // another kind
  EXPECT_THROW(s.counter("evh_test_x_total", "other help"), StatsError);             // another help
  EXPECT_THROW(s.counter("evh_test_x_total", "x", {{"channel", "c"}}), StatsError);  // other label names
  EXPECT_THROW(s.sharedCounter("evh_test_x_total", "x"), StatsError);                // another writer
  s.histogram("evh_test_h_seconds", "h", Buckets{{1, 2}, 1});
  EXPECT_THROW(s.histogram("evh_test_h_seconds", "h", Buckets{{1, 3}, 1}), StatsError);
  try {
    s.gauge("evh_test_x_total", "x");
  } catch (const StatsError& e) {
    EXPECT_THAT(e.what(), HasSubstr("evh_test_x_total: registered as a counter, now as a gauge"));
  }
}

TEST(StatsTest, InvalidNamesAreRefused) {
  Registry r;
  Scope s(r);
  EXPECT_THROW(s.counter("", "x"), StatsError);
  EXPECT_THROW(s.counter("9lives_total", "x"), StatsError);
  EXPECT_THROW(s.counter("with-dash_total", "x"), StatsError);
  EXPECT_THROW(s.counter("ok_total", "x", {{"bad-label", "v"}}), StatsError);
  EXPECT_THROW(s.counter("ok_total", "x", {{"__reserved", "v"}}), StatsError);
  EXPECT_THROW(s.counter("ok_total", "x", {{"a", "1"}, {"a", "2"}}), StatsError);
  EXPECT_THROW(s.histogram("ok_seconds", "x", Buckets{{1}, 1}, {{"le", "1"}}), StatsError);
  EXPECT_THROW(s.histogram("ok_seconds", "x", Buckets{{2, 2}, 1}), StatsError);
  EXPECT_TRUE(r.samples().empty());  // nothing half-registered shows
}

TEST(StatsTest, ASeriesGoesWithItsLastScope) {
  Registry r;
  auto old_one = std::make_unique<Scope>(r, Labels{{"channel", "orders"}});
  old_one->counter("evh_test_events_total", "events").inc(5);
  old_one->gauge("evh_test_only_old", "old").set(1);
  // A reload's successor registers the same series before the old one goes:
  // the counter carries on.
  Scope new_one(r, {{"channel", "orders"}});
  Counter c = new_one.counter("evh_test_events_total", "events");
  old_one.reset();
  c.inc();
  const std::string text = test::renderStats(r);
  EXPECT_THAT(text, HasSubstr("evh_test_events_total{channel=\"orders\"} 6\n"));
  EXPECT_THAT(text, Not(HasSubstr("evh_test_only_old")));  // its family went with its last series
  new_one.clear();
  EXPECT_TRUE(r.samples().empty());
  // Once gone, the name may come back as something else.
  Scope later(r);
  EXPECT_NO_THROW(later.gauge("evh_test_events_total", "now a gauge"));
}

TEST(StatsTest, ComputedGaugesReadTheLatestRegistration) {
  Registry r;
  int64_t old_value = 1;
  int64_t new_value = 2;
  auto old_one = std::make_unique<Scope>(r);
  old_one->computedGauge("evh_test_in_flight", "in flight", [&] { return static_cast<double>(old_value); });
  EXPECT_THAT(test::renderStats(r), HasSubstr("evh_test_in_flight 1\n"));
  Scope new_one(r);
  new_one.computedGauge("evh_test_in_flight", "in flight", [&] { return static_cast<double>(new_value); });
  EXPECT_THAT(test::renderStats(r), HasSubstr("evh_test_in_flight 2\n"));
  old_one.reset();
  EXPECT_THAT(test::renderStats(r), HasSubstr("evh_test_in_flight 2\n"));
  EXPECT_THROW(new_one.gauge("evh_test_in_flight", "in flight"), StatsError);  // stored vs computed
  new_one.clear();
  EXPECT_TRUE(r.samples().empty());
}

TEST(StatsTest, HistogramBucketsAreUpperBoundsInclusive) {
  Registry r;
  Scope s(r);
  // Microseconds observed, seconds exported.
  Histogram h = s.histogram("evh_test_latency_seconds", "latency", Buckets{{100, 1000, 10000}, 1e6});
  for (int64_t v : {0, 100, 101, 1000, 5000, 10000, 10001, 2000000}) {
    h.observe(v);
  }
  const auto families = r.samples();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].kind, Kind::Histogram);
  EXPECT_THAT(families[0].bounds, ::testing::ElementsAre(1e-4, 1e-3, 1e-2));
  ASSERT_EQ(families[0].series.size(), 1u);
  const SeriesSample& ss = families[0].series[0];
  // <= 100: 0, 100; <= 1000: + 101, 1000; <= 10000: + 5000, 10000; +Inf: all.
  EXPECT_THAT(ss.buckets, ::testing::ElementsAre(2u, 4u, 6u, 8u));
  EXPECT_EQ(ss.count, 8u);
  EXPECT_DOUBLE_EQ(ss.sum, (0 + 100 + 101 + 1000 + 5000 + 10000 + 10001 + 2000000) / 1e6);
  const std::string text = test::renderStats(r);
  EXPECT_THAT(text, HasSubstr("# TYPE evh_test_latency_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("evh_test_latency_seconds_bucket{le=\"0.0001\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("evh_test_latency_seconds_bucket{le=\"0.001\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("evh_test_latency_seconds_bucket{le=\"+Inf\"} 8\n"));
  EXPECT_THAT(text, HasSubstr("evh_test_latency_seconds_count 8\n"));
}

TEST(StatsTest, DefaultHandlesWriteNowhere) {
  Counter c;
  SharedGauge g;
  Histogram h;
  c.inc();
  g.add(3);
  h.observe(7);
  Registry r;
  EXPECT_TRUE(r.samples().empty());
}

// A collection copies values only: while nothing registers or goes, every
// collection shares one shape; a registration or a removal makes the next
// one build a new shape, and collections already taken keep theirs.
TEST(StatsTest, CollectionsShareTheShapeUntilSomethingRegistersOrGoes) {
  Registry r;
  Scope scope(r, {{"plugin", "p\"1"}});
  Counter c = scope.counter("evh_test_events_total", "events");
  Histogram h = scope.histogram("evh_test_seconds", "time", Buckets{{10, 100}, 1e3});
  c.inc(5);
  h.observe(50);
  const Collection first = r.collect();
  c.inc();
  const Collection second = r.collect();
  EXPECT_EQ(first.shape, second.shape);
  ASSERT_EQ(second.shape->families.size(), 2U);
  const FamilyShape& events = *second.shape->families[0].family;
  EXPECT_EQ(events.name, "evh_test_events_total");
  EXPECT_EQ(events.series.at(0).label_text, "plugin=\"p\\\"1\"");
  EXPECT_EQ(first.values[second.shape->families[0].base + events.series[0].slot].exact, 5);
  EXPECT_EQ(second.values[second.shape->families[0].base + events.series[0].slot].exact, 6);
  const FamilyShape& seconds = *second.shape->families[1].family;
  ASSERT_EQ(second.shape->slots, 1 + 4U);  // the counter; 2 bounds, +Inf and the sum
  const Value* hv = second.values.data() + second.shape->families[1].base + seconds.series.at(0).slot;
  EXPECT_EQ(hv[0].exact, 0);
  EXPECT_EQ(hv[1].exact, 1);
  EXPECT_EQ(hv[2].exact, 1);
  EXPECT_DOUBLE_EQ(hv[3].value, 0.05);

  std::optional<Scope> more(std::in_place, r);
  more->gauge("evh_test_depth", "depth").set(3);
  const Collection third = r.collect();
  EXPECT_NE(third.shape, second.shape);
  ASSERT_EQ(third.shape->families.size(), 3U);
  // Only the new family's shape is new; the others' are shared.
  EXPECT_EQ(third.shape->families[1].family, second.shape->families[0].family);
  EXPECT_EQ(third.shape->families[2].family, second.shape->families[1].family);
  EXPECT_EQ(second.shape->families.size(), 2U);  // the old shape is untouched
  more.reset();
  const Collection fourth = r.collect();
  EXPECT_NE(fourth.shape, third.shape);
  EXPECT_EQ(fourth.shape->families.size(), 2U);
  EXPECT_EQ(samplesOf(fourth).at(0).series.at(0).exact, 6);
}

TEST(StatsTest, AComputedGaugeThatThrowsIsLeftOutOfThatCollection) {
  Registry r;
  Scope scope(r);
  bool fail = true;
  int calls = 0;
  scope.computedGauge("evh_test_computed", "computed", [&fail, &calls]() -> double {
    ++calls;
    if (fail) {
      throw std::runtime_error("not now");
    }
    return 2.5;
  });
  EXPECT_FALSE(r.collect().values.at(0).present);  // never computed yet
  r.computeGauges();
  const Collection failed = r.collect();
  EXPECT_FALSE(failed.values.at(0).present);
  EXPECT_TRUE(samplesOf(failed).at(0).series.empty());
  fail = false;
  r.computeGauges();
  const Collection ok = r.collect();
  EXPECT_TRUE(ok.values.at(0).present);
  EXPECT_DOUBLE_EQ(samplesOf(ok).at(0).series.at(0).value, 2.5);
  // collect() reads what was computed: it never runs a callback.
  EXPECT_EQ(calls, 2);
  fail = true;
  EXPECT_DOUBLE_EQ(samplesOf(r.collect()).at(0).series.at(0).value, 2.5);
  EXPECT_EQ(calls, 2);
}

// Workers add to shared series while the loop's own counter is written by
// its one thread and an exporter collects and a subsystem comes and goes:
// no count is lost, and (under the sanitizer builds) no race or
// use-after-free.
TEST(StatsTest, WorkersWriteWhileAnotherThreadCollects) {
  Registry r;
  Scope workers_scope(r, {{"plugin", "p"}});
  SharedCounter calls = workers_scope.sharedCounter("evh_test_calls_total", "calls");
  SharedHistogram durations =
      workers_scope.sharedHistogram("evh_test_call_seconds", "call time", Buckets{{10, 100, 1000}, 1e6});
  Scope loop_scope(r);
  Counter loop_events = loop_scope.counter("evh_test_loop_events_total", "loop events");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::atomic<bool> done{false};
  std::thread exporter([&] {
    int64_t last = 0;
    while (!done.load()) {
      for (const auto& f : r.samples()) {
        if (f.name == "evh_test_calls_total") {
          const auto v = static_cast<int64_t>(f.series.at(0).value);
          EXPECT_GE(v, last);  // a counter read never goes back
          last = v;
        }
      }
    }
  });
  std::thread churn([&] {  // a subsystem built and retired over and over
    while (!done.load()) {
      Scope transient(r, {{"channel", "c"}});
      transient.counter("evh_test_transient_total", "transient").inc();
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        calls.inc();
        durations.observe((i + t) % 2000);
      }
    });
  }
  for (int i = 0; i < kPerThread; ++i) {
    loop_events.inc();
  }
  for (auto& w : workers) {
    w.join();
  }
  done = true;
  exporter.join();
  churn.join();
  EXPECT_EQ(calls.value(), int64_t{kThreads} * kPerThread);
  EXPECT_EQ(loop_events.value(), kPerThread);
  for (const auto& f : r.samples()) {
    if (f.name == "evh_test_call_seconds") {
      EXPECT_EQ(f.series.at(0).count, uint64_t{kThreads} * kPerThread);
    }
  }
}

}  // namespace
}  // namespace evh::ops
