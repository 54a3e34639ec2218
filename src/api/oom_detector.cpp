#include "api/oom_detector.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string_view>
#include <thread>

#include "api/periodic_thread.hpp"
#include "collect/sampler.hpp"
#include "core/log.hpp"

namespace memscope {

namespace {

using Clock = std::chrono::steady_clock;

constexpr double kMinIntervalSeconds = 0.05;
constexpr double kMiB = 1024.0 * 1024.0;

// "gpu3" -> 3; anything else -1.
int device_id_of(const std::string& resource) {
  constexpr std::string_view kPrefix = "gpu";
  if (resource.size() <= kPrefix.size() || resource.compare(0, kPrefix.size(), kPrefix) != 0) {
    return -1;
  }
  int index = -1;
  const char* first = resource.data() + kPrefix.size();
  const char* last = resource.data() + resource.size();
  const auto [end, error] = std::from_chars(first, last, index);
  if (error != std::errc() || end != last || index < 0) return -1;
  return index;
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status check_options(const OOMDetectorOptions& options) {
  if (!(std::isfinite(options.interval_seconds) &&
        options.interval_seconds >= kMinIntervalSeconds)) {
    return make_error(fmt::format("interval_seconds must be a finite number >= {} (got {})",
                                  kMinIntervalSeconds, options.interval_seconds));
  }
  analyze::ModelParams params;
  params.threshold_percent = options.threshold_percent;
  if (auto problem = analyze::validate(params)) return make_error(std::move(*problem));
  if (options.pid < 0) return make_error(fmt::format("pid must be >= 0 (got {})", options.pid));
  if (options.pid > 0) {
    const std::string path = fmt::format("{}/{}", options.proc_root, options.pid);
    struct stat info {};
    if (stat(path.c_str(), &info) != 0) {
      return make_error(fmt::format("pid {} does not exist (no {})", options.pid, path));
    }
  }
  if (options.limit_bytes && *options.limit_bytes == 0) {
    return make_error("limit_bytes must be > 0");
  }
  if (!(options.warn_at > RiskLevel::kLow && options.warn_at <= RiskLevel::kCritical)) {
    return make_error(
        "warn_at must be medium, high or critical (a warning at low would fire for "
        "every resource)");
  }
  return {};
}

}  // namespace

const char* risk_level_name(RiskLevel level) { return analyze::to_string(to_analyze(level)); }

std::optional<RiskLevel> parse_risk_level_name(std::string_view name) {
  const std::optional<analyze::RiskLevel> parsed = analyze::parse_risk_level(name);
  if (!parsed) return std::nullopt;
  return static_cast<RiskLevel>(static_cast<int>(*parsed));
}

analyze::RiskLevel to_analyze(RiskLevel level) {
  static_assert(static_cast<int>(RiskLevel::kCritical) ==
                static_cast<int>(analyze::RiskLevel::kCritical));
  return static_cast<analyze::RiskLevel>(static_cast<int>(level));
}

OomPrediction to_prediction(const analyze::Assessment& assessment) {
  OomPrediction prediction;
  prediction.device_id = device_id_of(assessment.resource);
  prediction.resource = assessment.resource;
  prediction.risk_level = analyze::to_string(assessment.level);
  prediction.confidence = assessment.confidence;
  prediction.current_usage_percent = assessment.usage_percent;
  prediction.growth_rate_mb_per_sec = assessment.growth_bytes_per_second / kMiB;
  prediction.predicted_oom_time_seconds = assessment.predicted_oom_seconds;
  prediction.used_bytes = assessment.used_bytes;
  prediction.limit_bytes = assessment.limit_bytes;
  prediction.limit_source = assessment.limit_source;
  prediction.recommendation = assessment.recommendation;
  return prediction;
}

struct OOMDetector::Impl {
  Impl(const OOMDetectorOptions& detector_options, const analyze::ModelParams& params,
       const analyze::ObservationScope& scope, std::unique_ptr<Sampler> opened_sampler)
      : options(detector_options),
        interval(std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(detector_options.interval_seconds))),
        sampler(std::move(opened_sampler)),
        monitor(params, scope) {}

  void run();
  void take_sample();
  void call_back(const std::vector<WarningCallback>& callbacks, const OomPrediction& prediction);

  const OOMDetectorOptions options;
  const Clock::duration interval;
  // Used by the monitor thread only (start and join order its uses across runs).
  const std::unique_ptr<Sampler> sampler;
  Clock::time_point epoch;  // t = 0 of the samples; set by the first start, kept across restarts
  bool started_once = false;

  // The forecast and the callbacks.
  mutable std::mutex state_mutex;
  analyze::OomMonitor monitor;
  std::vector<WarningCallback> callbacks;

  // Start and stop, one at a time.
  std::mutex control_mutex;
  std::thread thread;

  // The stop request the monitor thread waits on between samples.
  std::mutex stop_mutex;
  std::condition_variable stop_wakeup;
  bool stop_requested = false;

  std::atomic<bool> running{false};
  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> callback_errors{0};
};

namespace {
// The detector whose monitor thread this is: lets stop_monitoring() from a callback only ask.
thread_local const void* tls_monitoring_detector = nullptr;
}  // namespace

void OOMDetector::Impl::run() {
  tls_monitoring_detector = this;
  Clock::time_point next = Clock::now();
  for (;;) {
    take_sample();
    next += interval;
    // After a slow sample, wait a whole interval rather than catching up in a burst.
    const Clock::time_point now = Clock::now();
    if (next < now) next = now + interval;
    std::unique_lock lock(stop_mutex);
    if (stop_wakeup.wait_until(lock, next, [this] { return stop_requested; })) break;
  }
  running = false;
  tls_monitoring_detector = nullptr;
}

void OOMDetector::Impl::take_sample() {
  const Clock::time_point now = Clock::now();
  const double t_seconds = std::chrono::duration<double>(now - epoch).count();
  const Sample sample = sampler->sample(t_seconds, unix_ms_now());
  std::vector<OomPrediction> warnings;
  std::vector<WarningCallback> to_call;
  {
    std::lock_guard lock(state_mutex);
    for (const analyze::LevelChange& change : monitor.add(sample)) {
      if (change.to > change.from && change.to >= to_analyze(options.warn_at)) {
        warnings.push_back(to_prediction(change.assessment));
      }
    }
    if (!warnings.empty()) to_call = callbacks;
  }
  ++samples;
  // Without the lock: a callback may ask for predictions() or add another callback.
  for (const OomPrediction& prediction : warnings) call_back(to_call, prediction);
}

void OOMDetector::Impl::call_back(const std::vector<WarningCallback>& to_call,
                                  const OomPrediction& prediction) {
  for (const WarningCallback& callback : to_call) {
    try {
      callback(prediction.device_id, prediction);
    } catch (const std::exception& error) {
      ++callback_errors;
      log::warn("OOMDetector: a warning callback for {} threw: {}", prediction.resource,
                error.what());
    } catch (...) {
      ++callback_errors;
      log::warn("OOMDetector: a warning callback for {} threw a non-standard exception",
                prediction.resource);
    }
  }
}

OOMDetector::OOMDetector() = default;

OOMDetector::~OOMDetector() { stop_monitoring(); }

Result<std::unique_ptr<OOMDetector>> OOMDetector::create(const OOMDetectorOptions& options) {
  if (Status checked = check_options(options); !checked) return checked.error();

  const int pid = options.pid > 0 ? options.pid : static_cast<int>(getpid());
  auto sampler = api::open_sampler(
      {options.proc_root, options.sys_root, options.gpus, options.nvml_library, {}, pid});
  if (!sampler) return sampler.error();

  analyze::ModelParams params;
  params.threshold_percent = options.threshold_percent;
  analyze::ObservationScope scope;
  scope.root_pid = pid;
  scope.has_tree = true;
  scope.tree_limit = options.limit_bytes;
  scope.host = true;
  scope.gpus = options.gpus;

  std::unique_ptr<OOMDetector> detector(new OOMDetector());
  detector->impl_ = std::make_unique<Impl>(options, params, scope, std::move(*sampler));
  return detector;
}

void OOMDetector::add_warning_callback(WarningCallback callback) {
  if (!callback) return;
  std::lock_guard lock(impl_->state_mutex);
  impl_->callbacks.push_back(std::move(callback));
}

Status OOMDetector::start_monitoring() {
  Impl& impl = *impl_;
  std::lock_guard control(impl.control_mutex);
  if (impl.running) return make_error("OOMDetector: monitoring has already started");
  // A thread told to stop by its own callback has not been joined yet.
  if (impl.thread.joinable()) impl.thread.join();
  {
    std::lock_guard lock(impl.stop_mutex);
    impl.stop_requested = false;
  }
  if (!impl.started_once) {
    impl.epoch = Clock::now();
    impl.started_once = true;
  }
  impl.running = true;
  impl.thread = std::thread([&impl] { impl.run(); });
  return {};
}

void OOMDetector::stop_monitoring() {
  Impl& impl = *impl_;
  {
    std::lock_guard lock(impl.stop_mutex);
    impl.stop_requested = true;
  }
  impl.stop_wakeup.notify_all();
  // From a callback: the thread cannot join itself; it stops after the callback returns.
  if (tls_monitoring_detector == &impl) return;
  std::lock_guard control(impl.control_mutex);
  if (impl.thread.joinable()) impl.thread.join();
  impl.running = false;
}

bool OOMDetector::monitoring() const { return impl_->running; }

std::vector<OomPrediction> OOMDetector::predictions() const {
  std::lock_guard lock(impl_->state_mutex);
  std::vector<OomPrediction> out;
  out.reserve(impl_->monitor.assessments().size());
  for (const analyze::Assessment& assessment : impl_->monitor.assessments()) {
    out.push_back(to_prediction(assessment));
  }
  return out;
}

uint64_t OOMDetector::samples_taken() const { return impl_->samples; }

uint64_t OOMDetector::callback_errors() const { return impl_->callback_errors; }

}  // namespace memscope
