#include "memscope/fragmentation_analyzer.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>

#include "analyze/alloc_sim.hpp"
#include "analyze/fragmentation.hpp"
#include "collect/torch_snapshot.hpp"
#include "report/fragment_report.hpp"

namespace memscope {

namespace {

// The devices that have segments or trace entries, as `memscope fragment` lists them.
std::set<int> devices_of(const torch::Snapshot& snapshot) {
  std::set<int> devices;
  for (const torch::Segment& segment : snapshot.segments) devices.insert(segment.device);
  for (size_t d = 0; d < snapshot.device_traces.size(); ++d) {
    if (!snapshot.device_traces[d].empty()) devices.insert(static_cast<int>(d));
  }
  return devices;
}

struct Analysed {
  torch::Snapshot snapshot;
  std::vector<fragment::DeviceFragmentation> devices;
};

Result<Analysed> read_and_analyze(const std::string& path, const FragmentationOptions& options) {
  auto snapshot = torch::read_snapshot(path);
  if (!snapshot) return snapshot.error();
  if (options.device >= 0 && devices_of(*snapshot).count(options.device) == 0) {
    return make_error(fmt::format("device {} is not in {}", options.device, path));
  }
  Analysed out;
  out.devices = fragment::analyze(*snapshot, options.device, options.top_sites);
  out.snapshot = std::move(*snapshot);
  return out;
}

}  // namespace

FragmentationAnalyzer::FragmentationAnalyzer(FragmentationOptions options) : options_(options) {}

Result<std::vector<DeviceFragmentationSummary>> FragmentationAnalyzer::analyze(
    const std::string& snapshot_path) const {
  auto analysed = read_and_analyze(snapshot_path, options_);
  if (!analysed) return analysed.error();
  std::vector<DeviceFragmentationSummary> out;
  for (const fragment::DeviceFragmentation& device : analysed->devices) {
    DeviceFragmentationSummary summary;
    summary.device = device.device;
    summary.reserved_bytes = device.reserved_bytes;
    summary.allocated_bytes = device.allocated_bytes;
    summary.requested_bytes = device.requested_bytes;
    summary.internal_free_bytes = device.internal_free_bytes;
    summary.external_free_bytes = device.external_free_bytes;
    summary.largest_free_block_bytes = device.largest_free_block_bytes;
    summary.fragmentation_ratio = device.external_fragmentation;
    summary.segment_count = device.segment_count;
    summary.block_count = device.block_count;
    out.push_back(summary);
  }
  return out;
}

Result<std::string> FragmentationAnalyzer::report_json(const std::string& snapshot_path) const {
  auto analysed = read_and_analyze(snapshot_path, options_);
  if (!analysed) return analysed.error();
  nlohmann::json report = {
      {"report", "memscope-fragment"}, {"schema_version", 1}, {"mode", "snapshot"}};
  report["snapshot"] = snapshot_path;
  report["layout"] = report::snapshot_facts_json(analysed->snapshot);
  nlohmann::json list = nlohmann::json::array();
  for (const fragment::DeviceFragmentation& device : analysed->devices) {
    list.push_back(report::device_json(analysed->snapshot, device));
  }
  report["devices"] = std::move(list);
  return report.dump(1) + "\n";
}

Result<std::vector<DeviceSimulation>> FragmentationAnalyzer::simulate(
    const std::string& snapshot_path, const std::vector<std::string>& configs, bool sweep) const {
  using Candidates = std::vector<std::pair<std::string, alloc_sim::AllocatorConfig>>;
  Candidates user_configs;
  for (const std::string& text : configs) {
    auto config = alloc_sim::AllocatorConfig::parse(text);
    if (!config) return make_error(fmt::format("config '{}': {}", text, config.message()));
    user_configs.emplace_back(text, *config);
  }
  auto snapshot = torch::read_snapshot(snapshot_path);
  if (!snapshot) return snapshot.error();
  if (options_.device >= 0 && devices_of(*snapshot).count(options_.device) == 0) {
    return make_error(fmt::format("device {} is not in {}", options_.device, snapshot_path));
  }
  const auto recorded = alloc_sim::AllocatorConfig::from_settings(snapshot->settings);
  Candidates candidates;
  candidates.emplace_back("as recorded", recorded);
  candidates.insert(candidates.end(), user_configs.begin(), user_configs.end());
  if (sweep) {
    // The sweep's first entry is its base, already a candidate.
    Candidates swept =
        alloc_sim::sweep(user_configs.empty() ? recorded : user_configs.front().second);
    for (size_t i = 1; i < swept.size(); ++i) candidates.push_back(std::move(swept[i]));
  }
  std::vector<DeviceSimulation> out;
  for (size_t d = 0; d < snapshot->device_traces.size(); ++d) {
    const auto& trace = snapshot->device_traces[d];
    if (trace.empty() || (options_.device >= 0 && static_cast<size_t>(options_.device) != d)) {
      continue;
    }
    alloc_sim::SimOptions sim_options;
    for (const torch::Segment& segment : snapshot->segments) {
      if (segment.device == static_cast<int>(d)) {
        sim_options.snapshot_reserved_bytes += segment.total_size;
      }
    }
    std::vector<std::pair<std::string, alloc_sim::SimResult>> results;
    for (const auto& [label, config] : candidates) {
      auto result = alloc_sim::simulate(trace, config, sim_options);
      if (!result) {
        return make_error(
            fmt::format("{}: device {}: {}: {}", snapshot_path, d, label, result.message()));
      }
      results.emplace_back(label, std::move(*result));
    }
    DeviceSimulation device;
    device.device = static_cast<int>(d);
    device.complete = results.front().second.complete;
    for (const auto& [label, result] : results) {
      device.candidates.push_back({label, result.config, result.peak_reserved_bytes,
                                   result.fragmentation_at_peak, result.peak_fragmentation,
                                   result.ooms, result.retries});
    }
    const alloc_sim::Recommendation recommendation = alloc_sim::recommend(results, candidates);
    device.recommended = recommendation.index;
    device.recommended_line = recommendation.export_line;
    device.reason = recommendation.reason;
    out.push_back(std::move(device));
  }
  if (out.empty()) {
    return make_error(fmt::format(
        "{}: no device_traces to replay (record with torch.cuda.memory._record_memory_history "
        "before dumping the snapshot)",
        snapshot_path));
  }
  return out;
}

}  // namespace memscope
