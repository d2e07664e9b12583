// Micro benchmarks of the hot path without Redis: envelope decode, route
// lookup, dispatch to a no-op inline plugin, all of it through the ingest
// pipeline (ns per event), the marking of a plugin call, a log line on the
// thread that logs, and the stats registry's writes.
#include "common/log.h"
#include "dispatch/dead_letter.h"
#include "dispatch/dispatcher.h"
#include "dispatch/worker_pool.h"
#include "event/envelope.h"
#include "ingest/admission.h"
#include "ingest/pipeline.h"
#include "loop/current_call.h"
#include "loop/poster.h"
#include "ops/stats.h"
#include "plugin/registry.h"
#include "route/table.h"
#include "runtime/runtime.h"
#include "support/fake_host.h"

#include <benchmark/benchmark.h>
#include <spdlog/sinks/basic_file_sink.h>

#include <uv.h>

namespace {

// The plan's PRODUCT_CREATED, about 290 bytes as JollyJet publishes it.
const std::string kEvent = R"({"eventId":"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f","eventType":"PRODUCT_CREATED",)"
                           R"("timestamp":"2026-11-26T10:30:00.000Z","correlationId":"req-7d9e2b1c-3f4a-4b5c-9d8e",)"
                           R"("payload":{"productId":"prod-000123","name":"Stoneware Mug, 350 ml","price":12.5,)"
                           R"("category":"kitchen","sentAtNs":1764153000000000000}})";

void BM_Decode(benchmark::State& state) {
  evh::event::Decoder decoder;
  std::vector<evh::event::Item> items;
  for (auto _ : state) {
    decoder.decode(evh::event::makeMessage(kEvent, "jollyjet:events:product", "dev:jollyjet:events:product"), items);
    benchmark::DoNotOptimize(items.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kEvent.size()));
}
BENCHMARK(BM_Decode);

evh::config::Channel productChannel() {
  evh::config::Channel ch;
  ch.name = "jollyjet:events:product";
  for (const char* t : {"PRODUCT_CREATED", "PRODUCT_UPDATED", "PRODUCT_DELETED"}) {
    evh::config::Route r;
    r.events = {t};
    r.plugins = {"p"};
    ch.routes.push_back(r);
  }
  return ch;
}

void BM_Route(benchmark::State& state) {
  int dummy = 0;
  auto* fake = reinterpret_cast<evh::plugin::Instance*>(&dummy);
  evh::route::Table table(productChannel(), [&](const std::string&) { return fake; });
  for (auto _ : state) {
    benchmark::DoNotOptimize(&table.route("PRODUCT_UPDATED"));
  }
}
BENCHMARK(BM_Route);

// Decode + route + dispatch to an inline plugin that answers OK (ok_c).
void BM_DecodeRouteDispatch(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    evh::Poster poster(&loop);
    evh::dispatch::WorkerPool pool(1);
    evh::test::FakeServices services;
    evh::plugin::Registry registry;
    evh::config::Plugin p;
    p.name = "p";
    p.path = std::string(EVH_TEST_PLUGIN_DIR) + "/ok_c.so";
    p.config_json = "{}";
    p.config_dir = ".";
    registry.load({p}, {}, services, "dev:");
    evh::dispatch::Dispatcher::Options options;
    options.fallback_file = "/dev/null";
    evh::dispatch::Dispatcher dispatcher(&loop, poster, pool, {{registry.find("p"), {}, 0}}, options);
    evh::route::Table table(productChannel(), [&](const std::string& n) { return registry.find(n); });
    evh::event::Decoder decoder;
    std::vector<evh::event::Item> items;
    for (auto _ : state) {
      decoder.decode(evh::event::makeMessage(kEvent, "jollyjet:events:product", "dev:jollyjet:events:product"), items);
      auto& ev = std::get<evh::event::Event>(items[0]);
      const auto& targets = table.route(ev.eventType());
      dispatcher.dispatch(std::move(ev), targets);
    }
    pool.stop();
    poster.close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}
BENCHMARK(BM_DecodeRouteDispatch);

// The same through the ingest pipeline as a Pub/Sub message takes it: size
// check, decode, the (empty) checks slot, route by channel id in the
// runtime, admission, dispatch holding the runtime.
void BM_IngestPubSub(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    evh::Poster poster(&loop);
    evh::dispatch::WorkerPool pool(1);
    evh::test::FakeServices services;
    evh::plugin::Registry registry;
    evh::config::Plugin p;
    p.name = "p";
    p.path = std::string(EVH_TEST_PLUGIN_DIR) + "/ok_c.so";
    p.config_json = "{}";
    p.config_dir = ".";
    registry.load({p}, {}, services, "dev:");
    evh::dispatch::Dispatcher::Options options;
    options.fallback_file = "/dev/null";
    evh::dispatch::Dispatcher dispatcher(&loop, poster, pool, {{registry.find("p"), {}, 0}}, options);
    evh::config::Config cfg;
    cfg.environment = "dev";
    cfg.channels = {productChannel()};
    evh::runtime::ChannelIds ids;
    auto rt = evh::runtime::Runtime::build(
        cfg, [&](const std::string& n) { return registry.find(n); }, ids, 1);
    const evh::runtime::ChannelId id = rt->channels().at(0).id;
    {
      evh::ops::Registry stats;
      evh::ingest::Admission admission(&loop, dispatcher, evh::ingest::Admission::Limits{},
                                       evh::ingest::Admission::Sources{[] {}, [] {}}, stats);
      evh::ingest::Pipeline pipeline(&loop, dispatcher, std::move(rt), admission, stats, {});
      for (auto _ : state) {
        pipeline.pubsub(id, "dev:jollyjet:events:product", kEvent);
      }
    }
    pool.stop();
    poster.close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}
BENCHMARK(BM_IngestPubSub);

// The overload path's own cost on the loop: the dead-letter entry of a
// decoded event (reason overloaded), ready for the fallback writer.
void BM_DeadLetterEntry(benchmark::State& state) {
  evh::event::Decoder decoder;
  std::vector<evh::event::Item> items;
  decoder.decode(evh::event::makeMessage(kEvent, "jollyjet:events:product", "dev:jollyjet:events:product"), items);
  const auto& ev = std::get<evh::event::Event>(items.at(0));
  const evh::dispatch::DeadLetterInfo info{
      "overloaded", "overloaded", "10000 events in flight (limits.max_in_flight)", "", 0, 0, 0};
  for (auto _ : state) {
    auto entry = evh::dispatch::makeEntry(info, ev);
    benchmark::DoNotOptimize(entry.json.data());
  }
}
BENCHMARK(BM_DeadLetterEntry);

// The stats registry's write path (ops/stats.h): a loop-owned counter (load
// + store), a shared one (fetch_add, here uncontended), a histogram
// observation, and a plugin's metric_add through the C API.
void BM_StatsCounterInc(benchmark::State& state) {
  evh::ops::Registry registry;
  evh::ops::Scope scope(registry, {{"channel", "jollyjet:events:product"}});
  evh::ops::Counter c = scope.counter("evh_bench_events_total", "events");
  for (auto _ : state) {
    c.inc();
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_StatsCounterInc);

void BM_StatsSharedCounterInc(benchmark::State& state) {
  evh::ops::Registry registry;
  evh::ops::Scope scope(registry, {{"plugin", "p"}});
  evh::ops::SharedCounter c = scope.sharedCounter("evh_bench_calls_total", "calls");
  for (auto _ : state) {
    c.inc();
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_StatsSharedCounterInc);

// What timing a plugin call costs: the dispatcher reads uv_hrtime() before
// and after each call (evhost_handler_duration_seconds).
void BM_Hrtime(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(uv_hrtime());
  }
}
BENCHMARK(BM_Hrtime);

void BM_StatsHistogramObserve(benchmark::State& state) {
  evh::ops::Registry registry;
  evh::ops::Scope scope(registry);
  // Microseconds, exported as seconds: 10 bounds from 50 us to 5 s.
  evh::ops::Histogram h =
      scope.histogram("evh_bench_latency_seconds", "latency",
                      evh::ops::Buckets{{50, 100, 250, 500, 1000, 5000, 25000, 100000, 1000000, 5000000}, 1e6});
  int64_t v = 0;
  for (auto _ : state) {
    h.observe(v);
    v = (v + 337) & 0xfff;  // 0..4095 us: the first six buckets
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_StatsHistogramObserve);

void BM_StatsPluginMetricAdd(benchmark::State& state) {
  evh::test::FakeServices services;
  evh::plugin::Registry registry;
  evh::config::Plugin p;
  p.name = "p";
  p.path = std::string(EVH_TEST_PLUGIN_DIR) + "/ok_c.so";
  p.config_json = "{}";
  p.config_dir = ".";
  registry.load({p}, {}, services, "dev:");
  const evh_host_api& api = evh::plugin::hostApi();
  evh_metric* m =
      api.metric_register(registry.find("p")->cHandle(), evh_str{"bench", 5}, EVH_METRIC_COUNTER, evh_str{"", 0});
  for (auto _ : state) {
    api.metric_add(m, 1);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_StatsPluginMetricAdd);

// Marking a plugin call (loop/current_call.h) around a call the compiler
// cannot see into, as a plugin's handle() is: nothing (the floor), the
// loop's watchdog slot alone (before issue 13), the loop's CallScope (the
// slot and the thread's record for the fatal-signal handler), a worker's
// ThreadCallScope (the thread's record alone).
__attribute__((noinline)) int fakeHandle(const evh::CallSite* site) {
  benchmark::DoNotOptimize(site);
  return 0;
}

evh::CallSite benchSite() { return evh::CallSite{"p", "handle", nullptr, "ok_c"}; }

void BM_CallMarkNone(benchmark::State& state) {
  const evh::CallSite site = benchSite();
  for (auto _ : state) {
    benchmark::DoNotOptimize(fakeHandle(&site));
  }
}
BENCHMARK(BM_CallMarkNone);

void BM_CallMarkLoopSlotOnly(benchmark::State& state) {
  evh::CurrentCall slot;
  const evh::CallSite site = benchSite();
  for (auto _ : state) {
    const evh::CallSite* outer = slot.enter(&site);
    benchmark::DoNotOptimize(fakeHandle(&site));
    slot.leave(outer);
  }
}
BENCHMARK(BM_CallMarkLoopSlotOnly);

void BM_CallMarkLoop(benchmark::State& state) {
  evh::CurrentCall slot;
  const evh::CallSite site = benchSite();
  for (auto _ : state) {
    evh::CallScope scope(slot, site);
    benchmark::DoNotOptimize(fakeHandle(&site));
  }
}
BENCHMARK(BM_CallMarkLoop);

void BM_CallMarkWorker(benchmark::State& state) {
  const evh::CallSite site = benchSite();
  for (auto _ : state) {
    evh::ThreadCallScope scope(site);
    benchmark::DoNotOptimize(fakeHandle(&site));
  }
}
BENCHMARK(BM_CallMarkWorker);

// One info line (the text format, about 90 bytes) as the thread that logs
// pays for it: formatted and written to /dev/null there (Output::Sync, what
// evhost did before issue 13), or copied into the Async queue, whose writer
// thread formats and writes it (drops, if the writer falls behind, count as
// logged: that is what the loop would see).
void BM_LogLineSync(benchmark::State& state) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>("/dev/null");
  sink->set_formatter(evh::log::makeFormatter(evh::log::Format::Text));
  spdlog::logger logger("bench", sink);
  for (auto _ : state) {
    logger.info("stream {}: group {}, consumer {}", "jollyjet:events:orders", "workers", "host-1234");
  }
}
BENCHMARK(BM_LogLineSync);

void BM_LogLineAsync(benchmark::State& state) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>("/dev/null");
  sink->set_formatter(evh::log::makeFormatter(evh::log::Format::Text));
  evh::log::AsyncOutput output(sink, evh::log::kQueueLines);
  auto logger = output.makeLogger("bench");
  for (auto _ : state) {
    logger->info("stream {}: group {}, consumer {}", "jollyjet:events:orders", "workers", "host-1234");
  }
  state.counters["dropped"] = static_cast<double>(output.dropped());
  output.drain(std::chrono::seconds(10));
}
BENCHMARK(BM_LogLineAsync);

}  // namespace

BENCHMARK_MAIN();
