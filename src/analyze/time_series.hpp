// The memory time series that charts show, recorded from samples in bounded memory (each
// series keeps at most max_points rows, see downsample.hpp): host used/limit/swap, the process
// tree's RSS/PSS/USS, chosen processes' USS (the rest summed as "others"), and per GPU its
// used/reserved/total memory with its processes' memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "analyze/downsample.hpp"
#include "core/sample.hpp"

namespace memscope::analyze {

// A process shown on its own in the per-process chart; label is its series' name.
struct TrackedProcess {
  int pid = 0;
  uint64_t start_time_ticks = 0;
  std::string label;
};

struct TimeSeriesOptions {
  size_t max_points = 4000;
  // Processes whose USS gets a series of its own; the others are summed into "others". Empty:
  // no per-process series at all (the `profile` command, which does not know them in advance).
  std::vector<TrackedProcess> processes;
  // GPU processes with a series of their own per device, first come first served; later ones
  // are summed into "other processes".
  size_t max_gpu_processes = 8;
};

struct DeviceSeries {
  int index = 0;
  std::string name;
  // Columns 0..2 are "used", "reserved", "total"; then one per GPU process, "other processes".
  DownsampledSeries memory;
};

class TimeSeriesRecorder {
 public:
  // Names of the fixed columns.
  static constexpr const char* kHostUsed = "used";
  static constexpr const char* kHostLimit = "limit";
  static constexpr const char* kHostSwap = "swap used";
  static constexpr const char* kTreeRss = "RSS";
  static constexpr const char* kTreePss = "PSS";
  static constexpr const char* kTreeUss = "USS";
  static constexpr const char* kOthers = "others";
  static constexpr const char* kDeviceUsed = "used";
  static constexpr const char* kDeviceReserved = "reserved";
  static constexpr const char* kDeviceTotal = "total";
  static constexpr const char* kOtherGpuProcesses = "other processes";

  explicit TimeSeriesRecorder(TimeSeriesOptions options = {});

  void add(const Sample& sample);

  const DownsampledSeries& host() const { return host_; }
  const DownsampledSeries& tree() const { return tree_; }
  // Empty (no series) unless options.processes named some.
  const DownsampledSeries& process_uss() const { return process_uss_; }
  // By device index.
  std::vector<const DeviceSeries*> devices() const;
  size_t sample_count() const { return sample_count_; }

 private:
  struct Key {
    int pid;
    uint64_t start_time_ticks;
    bool operator<(const Key& other) const {
      return pid != other.pid ? pid < other.pid : start_time_ticks < other.start_time_ticks;
    }
  };
  struct DeviceState {
    DeviceSeries series;
    std::map<unsigned, size_t> process_columns;
  };

  void add_device(const DeviceSample& device, const Sample& sample);

  TimeSeriesOptions options_;
  size_t sample_count_ = 0;
  DownsampledSeries host_;
  DownsampledSeries tree_;
  DownsampledSeries process_uss_;
  std::map<Key, size_t> tracked_columns_;
  std::map<int, DeviceState> devices_;
};

}  // namespace memscope::analyze
