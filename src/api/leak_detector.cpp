#include "memscope/leak_detector.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>

#include "analyze/leak.hpp"
#include "api/periodic_thread.hpp"
#include "collect/sampler.hpp"
#include "report/leak_report.hpp"

namespace memscope {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kMinIntervalSeconds = 0.05;
constexpr double kMiB = 1024.0 * 1024.0;

Status check_options(const LeakDetectorOptions& options) {
  if (Status ok =
          api::check_interval("interval_seconds", options.interval_seconds, kMinIntervalSeconds);
      !ok) {
    return ok;
  }
  if (!(std::isfinite(options.threshold_mb_per_min) && options.threshold_mb_per_min > 0)) {
    return make_error(fmt::format("threshold_mb_per_min must be a finite number > 0 (got {})",
                                  options.threshold_mb_per_min));
  }
  if (!(std::isfinite(options.window_seconds) && options.window_seconds > 0)) {
    return make_error(
        fmt::format("window_seconds must be a finite number > 0 (got {})", options.window_seconds));
  }
  if (!(std::isfinite(options.min_span_seconds) && options.min_span_seconds >= 0)) {
    return make_error(fmt::format("min_span_seconds must be a finite number >= 0 (got {})",
                                  options.min_span_seconds));
  }
  return api::check_pid(options.pid, options.proc_root);
}

analyze::LeakParams params_of(const LeakDetectorOptions& options) {
  analyze::LeakParams params;
  params.threshold_mb_per_min = options.threshold_mb_per_min;
  params.window_seconds = options.window_seconds;
  params.min_span_seconds = options.min_span_seconds;
  // "Still growing" is judged over the last tenth of the window, as the CLI's 60 s of 600 s.
  params.recent_seconds = std::min(params.recent_seconds, options.window_seconds / 10);
  return params;
}

LeakVerdict to_public(const analyze::LeakVerdict& v) {
  LeakVerdict out;
  out.pid = v.pid;
  out.name = v.comm;
  out.memory = v.memory;
  out.verdict = v.verdict;
  out.reason = v.reason;
  out.growth_mb_per_min = v.growth_bytes_per_second * 60 / kMiB;
  out.recent_growth_mb_per_min = v.recent_growth_bytes_per_second * 60 / kMiB;
  out.confidence = v.confidence;
  out.first_bytes = v.first_bytes;
  out.current_bytes = v.current_bytes;
  out.peak_bytes = v.peak_bytes;
  out.first_seen_seconds = v.first_seen_seconds;
  out.last_seen_seconds = v.last_seen_seconds;
  return out;
}

}  // namespace

struct MemoryLeakDetector::Impl {
  Impl(const LeakDetectorOptions& detector_options, std::unique_ptr<Sampler> opened)
      : options(detector_options),
        sampler(std::move(opened)),
        epoch(Clock::now()),
        detector(params_of(detector_options)),
        thread("MemoryLeakDetector", detector_options.interval_seconds) {}

  void take_sample() {
    std::lock_guard sampling(sample_mutex);
    const double t_seconds = std::chrono::duration<double>(Clock::now() - epoch).count();
    const Sample sample = sampler->sample(t_seconds, api::unix_ms_now());
    std::lock_guard lock(state_mutex);
    detector.add(sample);
    ++samples;
  }

  const LeakDetectorOptions options;
  std::mutex sample_mutex;
  const std::unique_ptr<Sampler> sampler;
  const Clock::time_point epoch;
  mutable std::mutex state_mutex;
  analyze::LeakDetector detector;
  uint64_t samples = 0;
  api::PeriodicThread thread;
};

MemoryLeakDetector::MemoryLeakDetector() = default;

MemoryLeakDetector::~MemoryLeakDetector() { stop_monitoring(); }

Result<std::unique_ptr<MemoryLeakDetector>> MemoryLeakDetector::create(
    const LeakDetectorOptions& options) {
  if (Status checked = check_options(options); !checked) return checked.error();
  auto sampler = api::open_sampler(
      {options.proc_root, options.sys_root, options.gpus, options.nvml_library, {}, options.pid});
  if (!sampler) return sampler.error();
  std::unique_ptr<MemoryLeakDetector> detector(new MemoryLeakDetector());
  detector->impl_ = std::make_unique<Impl>(options, std::move(*sampler));
  return detector;
}

Status MemoryLeakDetector::start_monitoring() {
  Impl& impl = *impl_;
  return impl.thread.start([&impl] { impl.take_sample(); });
}

void MemoryLeakDetector::stop_monitoring() { impl_->thread.stop(); }

bool MemoryLeakDetector::monitoring() const { return impl_->thread.running(); }

void MemoryLeakDetector::sample_now() { impl_->take_sample(); }

std::vector<LeakVerdict> MemoryLeakDetector::verdicts() const {
  std::vector<analyze::LeakVerdict> found;
  {
    std::lock_guard lock(impl_->state_mutex);
    found = impl_->detector.verdicts();
  }
  std::vector<LeakVerdict> out;
  out.reserve(found.size());
  for (const analyze::LeakVerdict& v : found) out.push_back(to_public(v));
  return out;
}

bool MemoryLeakDetector::leak_suspected() const {
  for (const LeakVerdict& v : verdicts()) {
    if (v.verdict == "leak suspected") return true;
  }
  return false;
}

uint64_t MemoryLeakDetector::samples_taken() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->samples;
}

std::string MemoryLeakDetector::report_json() const {
  std::vector<analyze::LeakVerdict> found;
  {
    std::lock_guard lock(impl_->state_mutex);
    found = impl_->detector.verdicts();
  }
  const int pid = impl_->options.pid > 0 ? impl_->options.pid : static_cast<int>(getpid());
  const nlohmann::json document =
      report::leak_json(fmt::format("pid {}", pid), impl_->options.threshold_mb_per_min, found);
  return document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace memscope
