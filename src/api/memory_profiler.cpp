#include "memscope/memory_profiler.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "analyze/peaks.hpp"
#include "api/periodic_thread.hpp"
#include "collect/sampler.hpp"
#include "core/log.hpp"
#include "report/output_file.hpp"
#include "report/profile_report.hpp"

namespace memscope {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kMinIntervalSeconds = 0.05;
constexpr size_t kMaxCounterName = 128;

// One named series of the caller's. Past kMaxCounterPoints points every other one is dropped
// and from then on only every `stride`-th is kept, so a long run keeps its whole span evenly.
struct CounterSeries {
  std::vector<std::pair<double, double>> points;
  uint64_t count = 0;
  uint64_t stride = 1;
  double min = 0;
  double max = 0;
  double sum = 0;
  double last = 0;

  void add(double t_seconds, double value) {
    if (count == 0) {
      min = max = value;
    } else {
      min = std::min(min, value);
      max = std::max(max, value);
    }
    sum += value;
    last = value;
    if (count % stride == 0) {
      if (points.size() >= MemoryProfiler::kMaxCounterPoints) {
        size_t kept = 0;
        for (size_t i = 0; i < points.size(); i += 2) points[kept++] = points[i];
        points.resize(kept);
        stride *= 2;
      }
      if (count % stride == 0) points.emplace_back(t_seconds, value);
    }
    ++count;
  }

  nlohmann::json to_json() const {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [t, value] : points) list.push_back({std::round(t * 1000.0) / 1000.0, value});
    return {{"count", count},
            {"last", last},
            {"min", min},
            {"max", max},
            {"mean", count == 0 ? 0.0 : sum / static_cast<double>(count)},
            {"points", std::move(list)}};
  }
};

// The thread taking a sample: hooks that ask for another sample get none (no deadlock).
thread_local bool tls_sampling = false;

}  // namespace

struct MemoryProfiler::Impl {
  Impl(const MemoryProfilerOptions& profiler_options, std::unique_ptr<Sampler> opened)
      : options(profiler_options),
        sampler(std::move(opened)),
        epoch(Clock::now()),
        thread("MemoryProfiler", profiler_options.sampling_interval_seconds) {
    info.memscope_version = "0.1.0";
    info.interval_seconds = options.sampling_interval_seconds;
    info.device_filter = options.devices;
    info.start_unix_ms = api::unix_ms_now();
    info.root_pid = options.pid > 0 ? options.pid : static_cast<int>(getpid());
  }

  double seconds() const { return std::chrono::duration<double>(Clock::now() - epoch).count(); }
  void take_sample();
  Counters call_hooks(const std::vector<SampleHook>& hooks);

  const MemoryProfilerOptions options;
  std::mutex sample_mutex;  // the sampler is used by one thread at a time
  const std::unique_ptr<Sampler> sampler;
  const Clock::time_point epoch;

  mutable std::mutex state_mutex;
  RecordingInfo info;
  analyze::PeakTracker peaks;
  Sample last;
  std::map<std::string, CounterSeries> counters;
  std::vector<SampleHook> hooks;
  uint64_t samples = 0;
  uint64_t hook_errors = 0;

  api::PeriodicThread thread;
};

void MemoryProfiler::Impl::take_sample() {
  if (tls_sampling) return;
  tls_sampling = true;
  std::lock_guard sampling(sample_mutex);
  const double t_seconds = seconds();
  Sample sample = sampler->sample(t_seconds, api::unix_ms_now());
  std::vector<SampleHook> to_call;
  {
    std::lock_guard lock(state_mutex);
    to_call = hooks;
  }
  // Without the state lock: a hook may record_counter() or add another hook.
  const Counters values = call_hooks(to_call);
  {
    std::lock_guard lock(state_mutex);
    peaks.add(sample);
    last = std::move(sample);
    for (const auto& [name, value] : values) {
      if (name.empty() || name.size() > kMaxCounterName || !std::isfinite(value)) continue;
      counters[name].add(t_seconds, value);
    }
    ++samples;
  }
  tls_sampling = false;
}

MemoryProfiler::Counters MemoryProfiler::Impl::call_hooks(const std::vector<SampleHook>& to_call) {
  Counters all;
  for (const SampleHook& hook : to_call) {
    try {
      Counters values = hook();
      all.insert(all.end(), std::make_move_iterator(values.begin()),
                 std::make_move_iterator(values.end()));
    } catch (const std::exception& error) {
      std::lock_guard lock(state_mutex);
      ++hook_errors;
      log::warn("MemoryProfiler: a sample hook threw: {}", error.what());
    } catch (...) {
      std::lock_guard lock(state_mutex);
      ++hook_errors;
      log::warn("MemoryProfiler: a sample hook threw a non-standard exception");
    }
  }
  return all;
}

MemoryProfiler::MemoryProfiler() = default;

MemoryProfiler::~MemoryProfiler() { stop_monitoring(); }

Result<std::unique_ptr<MemoryProfiler>> MemoryProfiler::create(
    const MemoryProfilerOptions& options) {
  if (Status ok = api::check_interval("sampling_interval_seconds",
                                      options.sampling_interval_seconds, kMinIntervalSeconds);
      !ok) {
    return ok.error();
  }
  if (Status ok = api::check_pid(options.pid, options.proc_root); !ok) return ok.error();
  for (const int device : options.devices) {
    if (device < 0) return make_error(fmt::format("devices: {} is not a GPU index", device));
  }
  if (!options.gpus && !options.devices.empty()) {
    return make_error("devices: GPUs were asked for with gpus = false");
  }
  auto sampler = api::open_sampler({options.proc_root, options.sys_root, options.gpus,
                                    options.nvml_library, options.devices, options.pid});
  if (!sampler) return sampler.error();

  std::unique_ptr<MemoryProfiler> profiler(new MemoryProfiler());
  profiler->impl_ = std::make_unique<Impl>(options, std::move(*sampler));
  return profiler;
}

Status MemoryProfiler::start_monitoring() {
  Impl& impl = *impl_;
  return impl.thread.start([&impl] { impl.take_sample(); });
}

void MemoryProfiler::stop_monitoring() { impl_->thread.stop(); }

bool MemoryProfiler::monitoring() const { return impl_->thread.running(); }

void MemoryProfiler::sample_now() { impl_->take_sample(); }

Status MemoryProfiler::record_counter(const std::string& name, double value) {
  if (name.empty() || name.size() > kMaxCounterName) {
    return make_error(fmt::format("counter name must be 1..{} characters (got {})", kMaxCounterName,
                                  name.size()));
  }
  if (!std::isfinite(value)) {
    return make_error(fmt::format("counter '{}': value must be finite (got {})", name, value));
  }
  const double t_seconds = impl_->seconds();
  std::lock_guard lock(impl_->state_mutex);
  impl_->counters[name].add(t_seconds, value);
  return {};
}

void MemoryProfiler::add_sample_hook(SampleHook hook) {
  if (!hook) return;
  std::lock_guard lock(impl_->state_mutex);
  impl_->hooks.push_back(std::move(hook));
}

uint64_t MemoryProfiler::samples_taken() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->samples;
}

uint64_t MemoryProfiler::hook_errors() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->hook_errors;
}

ProfileSummary MemoryProfiler::summary() const {
  std::lock_guard lock(impl_->state_mutex);
  const analyze::PeakSummary peaks = impl_->peaks.summary();
  ProfileSummary out;
  out.samples = impl_->samples;
  out.duration_seconds = peaks.duration_seconds;
  out.host_peak_used_bytes = peaks.host.peak_used.bytes;
  out.host_limit_bytes = peaks.host.limit_bytes;
  for (const analyze::DevicePeaks& device : peaks.devices) {
    out.devices.push_back({device.index, device.peak_used.bytes, device.total_bytes});
  }
  return out;
}

std::string MemoryProfiler::report_json() const {
  const bool running = monitoring();
  std::lock_guard lock(impl_->state_mutex);
  RecordingInfo info = impl_->info;
  info.end_unix_ms = api::unix_ms_now();
  info.outcome = running ? "running" : "completed";
  nlohmann::json document = report::profile_json(impl_->peaks.summary(), impl_->last, info);
  for (const std::string& note : impl_->sampler->notes()) document["notes"].push_back(note);
  nlohmann::json counters = nlohmann::json::object();
  for (const auto& [name, series] : impl_->counters) counters[name] = series.to_json();
  document["counters"] = std::move(counters);
  document["samples_taken"] = impl_->samples;
  document["hook_errors"] = impl_->hook_errors;
  return document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Status MemoryProfiler::generate_report(const std::string& path) const {
  return report::write_file(path, report_json());
}

}  // namespace memscope
