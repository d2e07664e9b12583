// process_* series from /proc/self (stat, fd/) and /proc/stat (btime), and
// the descriptor limit from getrlimit.
#include "ops/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>

namespace evh::ops {
namespace {

std::optional<std::string> readFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return std::nullopt;
  }
  return text;
}

// /proc/stat's "btime <seconds>" line.
std::optional<double> bootTime() {
  const std::optional<std::string> text = readFile("/proc/stat");
  if (!text) {
    return std::nullopt;
  }
  const size_t at = text->find("\nbtime ");
  if (at == std::string::npos) {
    return std::nullopt;
  }
  const char* begin = text->data() + at + 7;
  int64_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(begin, text->data() + text->size(), seconds);
  if (ec != std::errc()) {
    return std::nullopt;
  }
  return static_cast<double>(seconds);
}

std::optional<int64_t> openFds() {
  struct Closer {
    void operator()(DIR* d) const { closedir(d); }
  };
  const std::unique_ptr<DIR, Closer> dir(opendir("/proc/self/fd"));
  if (!dir) {
    return std::nullopt;
  }
  int64_t n = 0;
  while (const dirent* e = readdir(dir.get())) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  return n - 1;  // the descriptor opendir itself holds
}

FamilySample single(const char* name, const char* help, Kind kind, int64_t exact, double value) {
  FamilySample f;
  f.name = name;
  f.help = help;
  f.kind = kind;
  SeriesSample s;
  s.exact = exact;
  s.value = value;
  f.series.push_back(std::move(s));
  return f;
}

FamilySample integer(const char* name, const char* help, int64_t v) {
  return single(name, help, Kind::Gauge, v, static_cast<double>(v));
}

}  // namespace

bool parseProcStat(std::string_view stat, long ticks_per_second, long page_bytes, double boot_time, ProcStat& out) {
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) {
    return false;
  }
  // Fields after the command name, numbered as in proc(5): 3 is the state.
  std::string_view rest = stat.substr(close + 1);
  std::vector<std::string_view> fields;
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(start);
    const size_t end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  const auto field = [&](size_t number, uint64_t& v) {
    const size_t i = number - 3;
    if (i >= fields.size()) {
      return false;
    }
    const std::string_view f = fields[i];
    const auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
    return ec == std::errc() && ptr == f.data() + f.size();
  };
  uint64_t utime = 0;
  uint64_t stime = 0;
  uint64_t starttime = 0;
  uint64_t vsize = 0;
  uint64_t rss = 0;
  if (!field(14, utime) || !field(15, stime) || !field(22, starttime) || !field(23, vsize) || !field(24, rss)) {
    return false;
  }
  const auto ticks = static_cast<double>(ticks_per_second);
  out.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  out.start_time_seconds = boot_time + static_cast<double>(starttime) / ticks;
  out.virtual_bytes = static_cast<int64_t>(vsize);
  out.resident_bytes = static_cast<int64_t>(rss) * page_bytes;
  return true;
}

std::vector<FamilySample> processFamilies() {
  std::vector<FamilySample> out;
  const std::optional<std::string> stat = readFile("/proc/self/stat");
  // The boot time never changes, and /proc/stat is costly to read (the
  // kernel sums every CPU's counters and every interrupt's): read once it
  // has been read. 0: not yet (a failed read is tried again next time).
  static std::atomic<double> boot_cache{0};
  std::optional<double> boot;
  if (const double known = boot_cache.load(std::memory_order_relaxed); known > 0) {
    boot = known;
  } else if ((boot = bootTime()) && *boot > 0) {
    boot_cache.store(*boot, std::memory_order_relaxed);
  }
  ProcStat ps;
  if (stat && boot && parseProcStat(*stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), *boot, ps)) {
    out.push_back(single("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", Kind::Counter,
                         0, ps.cpu_seconds));
    out.push_back(integer("process_resident_memory_bytes", "Resident memory size in bytes.", ps.resident_bytes));
    out.push_back(integer("process_virtual_memory_bytes", "Virtual memory size in bytes.", ps.virtual_bytes));
    out.push_back(single("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                         Kind::Gauge, 0, ps.start_time_seconds));
  }
  if (const std::optional<int64_t> fds = openFds()) {
    out.push_back(integer("process_open_fds", "Number of open file descriptors.", *fds));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.push_back(limit.rlim_cur == RLIM_INFINITY
                      ? single("process_max_fds", "Maximum number of open file descriptors.", Kind::Gauge, 0,
                               std::numeric_limits<double>::infinity())
                      : integer("process_max_fds", "Maximum number of open file descriptors.",
                                static_cast<int64_t>(limit.rlim_cur)));
  }
  return out;
}

}  // namespace evh::ops
