// A simulated training loop driven by the memscope C++ API: a MemoryProfiler samples memory in
// the background and records the loop's own figures as counters, an OOMDetector warns when a
// resource's risk rises, and a BatchSizeController picks each step's batch size from the
// simulated accelerator's headroom (shrinking after a simulated out-of-memory error).
//
//   profile_training_loop [REPORT.json] [STEPS]
// Writes the profile report (the `memscope profile` JSON plus "counters") to REPORT.json
// (default memscope-example-profile.json). Exit status 0 on success, 1 on an error.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "memscope/memscope.hpp"

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
// The simulated accelerator: fixed model state plus activations that grow with the batch.
constexpr uint64_t kDeviceLimitBytes = 256 * kMiB;
constexpr uint64_t kModelBytes = 64 * kMiB;
constexpr uint64_t kBytesPerSample = 3 * kMiB;

int fail(const std::string& what, const std::string& message) {
  std::fprintf(stderr, "profile_training_loop: %s: %s\n", what.c_str(), message.c_str());
  return 1;
}

// One step's host work: allocate and touch a batch-sized buffer (a tenth of the simulated
// activations, so the host side moves with the batch too).
uint64_t host_step(int64_t batch_size) {
  std::vector<unsigned char> activations(static_cast<size_t>(batch_size) * kBytesPerSample / 10);
  std::memset(activations.data(), 1, activations.size());
  uint64_t checksum = 0;
  for (size_t i = 0; i < activations.size(); i += 4096) checksum += activations[i];
  return checksum;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string report_path = argc > 1 ? argv[1] : "memscope-example-profile.json";
  const int steps = argc > 2 ? std::atoi(argv[2]) : 40;
  if (steps <= 0) return fail("STEPS", "must be a positive number");

  memscope::MemoryProfilerOptions profiler_options;
  profiler_options.sampling_interval_seconds = 0.05;
  auto profiler = memscope::MemoryProfiler::create(profiler_options);
  if (!profiler) return fail("MemoryProfiler", profiler.message());

  memscope::OOMDetectorOptions detector_options;
  detector_options.interval_seconds = 0.05;
  detector_options.warn_at = memscope::RiskLevel::kMedium;
  auto detector = memscope::OOMDetector::create(detector_options);
  if (!detector) return fail("OOMDetector", detector.message());
  std::atomic<int> warnings{0};
  (*detector)->add_warning_callback(
      [&warnings](int device_id, const memscope::OomPrediction& prediction) {
        ++warnings;
        std::fprintf(stderr, "OOM warning: %s (device %d) is %s at %.1f %%: %s\n",
                     prediction.resource.c_str(), device_id, prediction.risk_level.c_str(),
                     prediction.current_usage_percent, prediction.recommendation.c_str());
      });

  memscope::BatchSizeControllerOptions batch_options;
  batch_options.initial = 16;
  batch_options.max = 128;
  batch_options.grow_after = 2;
  batch_options.cooldown = 2;
  auto controller = memscope::BatchSizeController::create(batch_options);
  if (!controller) return fail("BatchSizeController", controller.message());

  std::atomic<int> step_number{0};
  (*profiler)->add_sample_hook([&step_number] {
    return memscope::MemoryProfiler::Counters{{"step", static_cast<double>(step_number.load())}};
  });
  if (memscope::Status started = (*profiler)->start_monitoring(); !started) {
    return fail("MemoryProfiler", started.message());
  }
  if (memscope::Status started = (*detector)->start_monitoring(); !started) {
    return fail("OOMDetector", started.message());
  }

  uint64_t checksum = 0;
  int out_of_memory = 0;
  for (int step = 0; step < steps; ++step) {
    step_number = step;
    const int64_t batch = controller->current();
    const uint64_t device_used = kModelBytes + static_cast<uint64_t>(batch) * kBytesPerSample;
    if (device_used > kDeviceLimitBytes) {
      ++out_of_memory;  // the simulated allocator refused: retry smaller next step
      controller->record_out_of_memory();
      continue;
    }
    checksum += host_step(batch);
    (void)(*profiler)->record_counter("batch_size", static_cast<double>(batch));
    (void)(*profiler)->record_counter("simulated_device_used_bytes",
                                      static_cast<double>(device_used));
    memscope::MemoryObservation observation;
    observation.used_bytes = device_used;
    observation.limit_bytes = kDeviceLimitBytes;
    controller->recommend(observation);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  (*detector)->stop_monitoring();
  (*profiler)->stop_monitoring();
  (*profiler)->sample_now();

  if (memscope::Status written = (*profiler)->generate_report(report_path); !written) {
    return fail("report", written.message());
  }
  const memscope::ProfileSummary summary = (*profiler)->summary();
  std::printf(
      "%d steps, final batch size %lld, %d simulated out-of-memory errors, %d OOM warnings\n"
      "%llu samples, host peak %.1f MiB; report: %s (checksum %llu)\n",
      steps, static_cast<long long>(controller->current()), out_of_memory, warnings.load(),
      static_cast<unsigned long long>(summary.samples),
      static_cast<double>(summary.host_peak_used_bytes) / static_cast<double>(kMiB),
      report_path.c_str(), static_cast<unsigned long long>(checksum));
  return 0;
}
