#include "analyze/time_series.hpp"

#include <fmt/format.h>

namespace memscope::analyze {
namespace {

double as_double(uint64_t bytes) { return static_cast<double>(bytes); }

std::string gpu_process_label(unsigned pid, const Sample& sample) {
  for (const ProcessSample& process : sample.processes) {
    if (process.pid >= 0 && static_cast<unsigned>(process.pid) == pid) {
      return fmt::format("{} [{}]", process.comm, pid);
    }
  }
  return fmt::format("pid {}", pid);
}

}  // namespace

TimeSeriesRecorder::TimeSeriesRecorder(TimeSeriesOptions options)
    : options_(std::move(options)),
      host_(options_.max_points),
      tree_(options_.max_points),
      process_uss_(options_.max_points) {
  host_.series(kHostUsed);
  host_.series(kHostLimit);
  host_.series(kHostSwap);
  tree_.series(kTreeRss);
  tree_.series(kTreePss);
  tree_.series(kTreeUss);
  for (const TrackedProcess& process : options_.processes) {
    const std::string label =
        process.label.empty() ? fmt::format("[{}]", process.pid) : process.label;
    tracked_columns_[{process.pid, process.start_time_ticks}] = process_uss_.series(label);
  }
}

void TimeSeriesRecorder::add(const Sample& sample) {
  ++sample_count_;
  const double t = sample.t_seconds;
  const SystemSample& system = sample.system;
  const MemInfo& meminfo = system.meminfo;
  host_.begin_row(t);
  host_.set(0, as_double(system.used_bytes));
  if (system.limit_bytes > 0) host_.set(1, as_double(system.limit_bytes));
  host_.set(2, as_double(meminfo.swap_total_bytes > meminfo.swap_free_bytes
                             ? meminfo.swap_total_bytes - meminfo.swap_free_bytes
                             : 0));

  uint64_t rss = 0;
  uint64_t pss = 0;
  uint64_t uss = 0;
  uint64_t others = 0;
  bool any_others = false;
  const bool per_process = !tracked_columns_.empty();
  if (per_process) process_uss_.begin_row(t);
  for (const ProcessSample& process : sample.processes) {
    rss += process.rss_bytes;
    pss += process.pss_bytes;
    uss += process.uss_bytes;
    if (!per_process) continue;
    const auto found = tracked_columns_.find({process.pid, process.start_time_ticks});
    if (found != tracked_columns_.end()) {
      process_uss_.set(found->second, as_double(process.uss_bytes));
    } else {
      others += process.uss_bytes;
      any_others = true;
    }
  }
  if (any_others) process_uss_.set(process_uss_.series(kOthers), as_double(others));
  tree_.begin_row(t);
  if (!sample.processes.empty()) {
    tree_.set(0, as_double(rss));
    tree_.set(1, as_double(pss));
    tree_.set(2, as_double(uss));
  }
  for (const DeviceSample& device : sample.devices) add_device(device, sample);
}

void TimeSeriesRecorder::add_device(const DeviceSample& device, const Sample& sample) {
  auto [it, inserted] = devices_.try_emplace(device.index);
  DeviceState& state = it->second;
  DownsampledSeries& memory = state.series.memory;
  if (inserted) {
    state.series.index = device.index;
    memory = DownsampledSeries(options_.max_points);
    memory.series(kDeviceUsed);
    memory.series(kDeviceReserved);
    memory.series(kDeviceTotal);
  }
  if (!device.name.empty()) state.series.name = device.name;
  memory.begin_row(sample.t_seconds);
  if (!device.ok) return;  // a gap in the chart: the device could not be read
  memory.set(0, as_double(device.used_bytes));
  if (device.reserved_bytes) memory.set(1, as_double(*device.reserved_bytes));
  memory.set(2, as_double(device.total_bytes));
  uint64_t others = 0;
  bool any_others = false;
  for (const GpuProcess& process : device.processes) {
    auto column = state.process_columns.find(process.pid);
    if (column == state.process_columns.end() &&
        state.process_columns.size() < options_.max_gpu_processes) {
      column = state.process_columns
                   .emplace(process.pid, memory.series(gpu_process_label(process.pid, sample)))
                   .first;
    }
    if (column != state.process_columns.end()) {
      memory.set(column->second, as_double(process.used_bytes));
    } else {
      others += process.used_bytes;
      any_others = true;
    }
  }
  if (any_others) memory.set(memory.series(kOtherGpuProcesses), as_double(others));
}

std::vector<const DeviceSeries*> TimeSeriesRecorder::devices() const {
  std::vector<const DeviceSeries*> out;
  out.reserve(devices_.size());
  for (const auto& [index, state] : devices_) out.push_back(&state.series);
  return out;
}

}  // namespace memscope::analyze
