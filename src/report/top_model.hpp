// The data behind `memscope interactive` (alias `top`), free of ncurses so it is unit-tested:
// the process rows with their sort, filter and tree order, a history ring per process and per
// GPU (growth rates, sparklines), the OOM forecast per resource, the smaps breakdown of the
// details view, and the formatting of every cell into a fixed width. The screen
// (src/cli/cmd_interactive.cpp) only draws these strings and reads keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "analyze/oom.hpp"
#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope::report {

// The last `capacity` values of one timeline, oldest first.
class HistoryRing {
 public:
  explicit HistoryRing(size_t capacity = 120);
  void push(double t_seconds, double value);
  size_t size() const { return size_; }
  size_t capacity() const { return times_.size(); }
  // i = 0 is the oldest value kept.
  double value(size_t i) const;
  double time(size_t i) const;
  std::vector<double> values() const;
  // Least-squares slope (per second) over the points of the last window_seconds; nothing with
  // fewer than two points or when they span no time.
  std::optional<double> slope(double window_seconds) const;

 private:
  size_t index(size_t i) const { return (start_ + i) % times_.size(); }
  std::vector<double> times_;
  std::vector<double> values_;
  size_t start_ = 0;
  size_t size_ = 0;
};

enum class SortKey { kMemory, kGpu, kGrowth, kPid, kName };
// 'm', 'g', 'r', 'p', 'n' -> the key; nothing for any other character.
std::optional<SortKey> sort_key_for(int key);
const char* to_string(SortKey key);  // "memory", "gpu", "growth", "pid", "name"

// One process as the table shows it.
struct ProcessRow {
  int pid = 0;
  int ppid = 0;
  uint64_t start_time_ticks = 0;
  std::string name;  // comm
  std::string cmdline;
  uint64_t rss_bytes = 0;
  uint64_t pss_bytes = 0;
  uint64_t uss_bytes = 0;
  uint64_t swap_bytes = 0;
  bool smaps_readable = true;
  uint64_t gpu_bytes = 0;
  std::optional<int> rank;
  std::optional<int> local_rank;
  std::optional<double> growth_bytes_per_second;  // of RSS + GPU memory; nothing until known
  int depth = 0;                                  // tree view: distance from a shown root
};

// One GPU with its forecast.
struct DeviceRow {
  DeviceSample device;
  std::optional<analyze::Assessment> forecast;  // the OOM model's assessment of "gpuN"
};

// Host memory against the tightest limit, swap, pressure, and the forecast.
struct HostRow {
  SystemSample system;
  std::optional<analyze::Assessment> forecast;  // the OOM model's assessment of "host"
};

struct TopOptions {
  size_t history_points = 120;         // per process and per GPU
  double growth_window_seconds = 10;   // the growth column's slope is fitted over this
};

class TopModel {
 public:
  explicit TopModel(TopOptions options = {});

  // A new sample, and the OOM model's assessments after it (OomMonitor::assessments()).
  void update(const Sample& sample, const std::vector<analyze::Assessment>& assessments);

  void set_sort(SortKey key) { sort_ = key; }
  SortKey sort() const { return sort_; }
  // Case-insensitive substring of the name or the command line; empty shows every process.
  void set_filter(std::string filter) { filter_ = std::move(filter); }
  const std::string& filter() const { return filter_; }
  void set_tree(bool tree) { tree_ = tree; }
  bool tree() const { return tree_; }

  // The rows to show: filtered; sorted by the key (memory, GPU and growth descending; pid and
  // name ascending; ties by pid), or in tree view each parent followed by its children (sorted
  // likewise among siblings), a process whose parent is not shown being a root.
  std::vector<ProcessRow> visible_rows() const;
  // The row of `pid` in the latest sample, shown or not.
  const ProcessRow* find(int pid) const;

  const std::vector<DeviceRow>& devices() const { return devices_; }
  const HostRow& host() const { return host_; }
  bool has_sample() const { return samples_ > 0; }
  double t_seconds() const { return t_seconds_; }

  // RSS + GPU memory of a process over time, and GPU used memory per device index.
  const HistoryRing* process_history(int pid) const;
  const HistoryRing* device_history(int index) const;

 private:
  TopOptions options_;
  SortKey sort_ = SortKey::kMemory;
  std::string filter_;
  bool tree_ = false;
  std::vector<ProcessRow> rows_;  // by pid
  std::vector<DeviceRow> devices_;
  HostRow host_;
  // Keyed by pid and start time, so a recycled pid starts a new history.
  std::map<std::pair<int, uint64_t>, HistoryRing> process_history_;
  std::map<int, HistoryRing> device_history_;
  uint64_t samples_ = 0;
  double t_seconds_ = 0;
};

// --- The details view: /proc/PID/smaps summed by kind of mapping. ---
struct SmapsBreakdown {
  // Resident bytes (Rss) of each kind.
  uint64_t heap_bytes = 0;   // [heap]: the brk heap
  uint64_t anon_bytes = 0;   // anonymous mappings: malloc arenas, mmap'd buffers, tensors
  uint64_t file_bytes = 0;   // mapped files: code, libraries, mmap'd data
  uint64_t shmem_bytes = 0;  // shared memory: /dev/shm, memfd, SysV, shared anonymous
  uint64_t stack_bytes = 0;  // [stack]
  uint64_t other_bytes = 0;  // devices (e.g. /dev/nvidia*), [vdso], [vvar], ...
  uint64_t rss_bytes = 0;    // the sum of the above
  uint64_t pss_bytes = 0;
  uint64_t swap_bytes = 0;
  size_t mappings = 0;
};
// Fails when no mapping header is found or a size line is malformed.
Result<SmapsBreakdown> parse_smaps_breakdown(std::string_view text);

// --- Cells: each function returns exactly `width` columns (ASCII). ---
// Left-aligned, cut (the last column becomes '~') or padded.
std::string fit_left(std::string_view text, size_t width);
std::string fit_right(std::string_view text, size_t width);
// "0", "812K", "1.5G", "80G", "12.3T": at most 5 characters.
std::string short_bytes(uint64_t bytes);
// "+1.2M/s", "-300K/s", "0/s"; "-" when unknown.
std::string short_rate(std::optional<double> bytes_per_second);
// "[#####.....]" with width - 2 cells inside; fraction clamped to 0..1.
std::string bar(double fraction, size_t width);
// What the OOM forecast says in a few characters: "12m03s", "none" (not growing), "-" (no
// forecast, e.g. a resource without a limit).
std::string time_to_oom_cell(const std::optional<analyze::Assessment>& forecast);
// The last `width` values scaled to levels 0..7 (min..max of those values; all 0 when flat).
std::vector<int> sparkline_levels(const std::vector<double>& values, size_t width);

// The table's header and one row at `width` columns (at least 60). The sorted column's title
// is marked with '*'.
std::string process_header(size_t width, SortKey sort);
std::string process_line(const ProcessRow& row, size_t width, bool tree);
// "GPU0 NAME [bar] used/total res R util U% T C oom X" fitted to width.
std::string device_line(const DeviceRow& row, size_t width);
// "Mem [bar] used/limit (source) PSI some S full F oom X" and "Swap [bar] used/total".
std::string host_memory_line(const HostRow& host, size_t width);
std::string host_swap_line(const HostRow& host, size_t width);

}  // namespace memscope::report
