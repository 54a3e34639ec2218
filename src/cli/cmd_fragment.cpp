// memscope fragment --snapshot FILE [--device N] [--timeline] [--plot FILE] [--output F.json]
//                  --compare A B [--output F.json]
//                  --simulate FILE [--config CONF]... [--no-sweep] [--capacity SIZE]
//                  --pid PID [--wait S] [--output F.json]
// PyTorch memory snapshots (torch.cuda.memory._dump_snapshot), read natively: fragmentation
// per device, the call sites holding memory, the segment map, memory over time from the
// recorded trace, the difference between two snapshots, and a replay of the recorded
// allocations under other PYTORCH_CUDA_ALLOC_CONF settings. --pid: the glibc heap of a process
// running under the allocation tracker, which answers for it (docs/tracker-format.md).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <set>

#include "analyze/alloc_sim.hpp"
#include "analyze/fragmentation.hpp"
#include "cli/common.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "collect/glibc_heap.hpp"
#include "collect/torch_snapshot.hpp"
#include "core/units.hpp"
#include "report/fragment_report.hpp"
#include "report/output_file.hpp"
#include "report/plot.hpp"

namespace memscope::cli {
namespace {

struct FragmentOptions {
  std::string snapshot;
  std::vector<std::string> compare;
  std::string simulate;
  int device = -1;
  std::string output;
  std::string plot;
  bool timeline = false;
  size_t top = 10;
  std::vector<std::string> configs;
  bool no_sweep = false;
  std::string capacity;
  int pid = 0;
  double wait_seconds = 5;
  CLI::Option* wait_option = nullptr;  // given on the command line: count() > 0
};

int usage_error(const std::string& message) {
  std::cerr << "memscope fragment: " << message << "\n";
  return kExitUsage;
}

int input_error(const std::string& message) {
  std::cerr << "memscope fragment: " << message << "\n";
  return kExitBadInput;
}

std::string device_list(const std::set<int>& devices) {
  std::string out;
  for (const int device : devices) out += (out.empty() ? "" : ", ") + std::to_string(device);
  return out.empty() ? "none" : out;
}

std::set<int> devices_of(const torch::Snapshot& snapshot) {
  std::set<int> devices;
  for (const torch::Segment& segment : snapshot.segments) devices.insert(segment.device);
  for (size_t d = 0; d < snapshot.device_traces.size(); ++d) {
    if (!snapshot.device_traces[d].empty()) devices.insert(static_cast<int>(d));
  }
  return devices;
}

// Usage errors are found before the (possibly long) read: output and plot paths.
int check_outputs(const FragmentOptions& options) {
  if (!options.output.empty()) {
    if (Status writable = check_writable(options.output); !writable) {
      return usage_error(writable.message());
    }
  }
  if (!options.plot.empty()) {
    if (Status plottable = report::check_plot_path(options.plot); !plottable) {
      return usage_error(plottable.message());
    }
    if (!options.timeline && options.snapshot.empty()) {
      return usage_error("--plot draws the segment map of --snapshot (or, with --timeline, the trace)");
    }
  }
  return kExitOk;
}

int write_json(const std::string& path, const nlohmann::json& report) {
  if (path.empty()) return kExitOk;
  if (Status written = report::write_file(path, report.dump(1) + "\n"); !written) {
    std::cerr << "memscope fragment: " << written.message() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

nlohmann::json report_header(const std::string& kind) {
  return {{"report", "memscope-fragment"}, {"schema_version", 1}, {"mode", kind}};
}

int snapshot_command(const FragmentOptions& options) {
  auto snapshot = torch::read_snapshot(options.snapshot);
  if (!snapshot) return input_error(snapshot.message());
  const std::set<int> devices = devices_of(*snapshot);
  if (options.device >= 0 && devices.count(options.device) == 0) {
    return usage_error(fmt::format("device {} is not in {} (devices: {})", options.device,
                                   options.snapshot, device_list(devices)));
  }
  nlohmann::json report = report_header(options.timeline ? "timeline" : "snapshot");
  report["snapshot"] = options.snapshot;
  report["layout"] = report::snapshot_facts_json(*snapshot);
  const auto analysed = fragment::analyze(*snapshot, options.device, options.top);
  nlohmann::json list = nlohmann::json::array();
  std::cout << fmt::format("{}: {} segments, {} trace entries\n", options.snapshot,
                           snapshot->segments.size(),
                           report["layout"].at("trace_entries").get<size_t>());
  for (const fragment::DeviceFragmentation& device : analysed) {
    std::cout << report::device_text(*snapshot, device, options.top);
    list.push_back(report::device_json(*snapshot, device));
  }
  if (analysed.empty()) std::cout << "no segments: nothing is reserved\n";
  report["devices"] = std::move(list);
  if (options.timeline) {
    const auto series = fragment::timelines(*snapshot, options.device);
    nlohmann::json timelines = nlohmann::json::array();
    for (const fragment::Timeline& timeline : series) {
      std::cout << report::timeline_text(timeline);
      timelines.push_back(report::timeline_json(timeline));
    }
    if (series.empty()) std::cout << "no trace entries (device_traces is empty)\n";
    report["timelines"] = std::move(timelines);
    if (!options.plot.empty()) {
      if (Status drawn = report::write_timeline_plot(options.plot, series,
                                                     "memscope fragment: " + options.snapshot);
          !drawn) {
        std::cerr << "memscope fragment: " << drawn.message() << "\n";
        return kExitFailure;
      }
    }
  } else if (!options.plot.empty()) {
    if (Status drawn = report::write_segment_map(options.plot, *snapshot, options.device,
                                                 "segments of " + options.snapshot);
        !drawn) {
      std::cerr << "memscope fragment: " << drawn.message() << "\n";
      return kExitFailure;
    }
  }
  return write_json(options.output, report);
}

int compare_command(const FragmentOptions& options) {
  auto a = torch::read_snapshot(options.compare[0]);
  if (!a) return input_error(a.message());
  auto b = torch::read_snapshot(options.compare[1]);
  if (!b) return input_error(b.message());
  const fragment::Comparison comparison = fragment::compare(*a, *b, options.top);
  std::cout << fmt::format("A = {}\nB = {}\n", options.compare[0], options.compare[1]);
  std::cout << report::comparison_text(*b, comparison);
  nlohmann::json report = report_header("compare");
  report["a"] = options.compare[0];
  report["b"] = options.compare[1];
  report["compare"] = report::comparison_json(*b, comparison);
  return write_json(options.output, report);
}

int simulate_command(const FragmentOptions& options) {
  uint64_t capacity = 0;
  if (!options.capacity.empty()) {
    auto parsed = parse_size(options.capacity);
    if (!parsed || *parsed == 0) {
      return usage_error(fmt::format("--capacity '{}': expected a size like 80GiB",
                                     options.capacity));
    }
    capacity = *parsed;
  }
  std::vector<std::pair<std::string, alloc_sim::AllocatorConfig>> user_configs;
  for (const std::string& text : options.configs) {
    auto config = alloc_sim::AllocatorConfig::parse(text);
    if (!config) return usage_error(fmt::format("--config '{}': {}", text, config.message()));
    user_configs.emplace_back(text, *config);
  }
  auto snapshot = torch::read_snapshot(options.simulate);
  if (!snapshot) return input_error(snapshot.message());
  const std::set<int> devices = devices_of(*snapshot);
  if (options.device >= 0 && devices.count(options.device) == 0) {
    return usage_error(fmt::format("device {} is not in {} (devices: {})", options.device,
                                   options.simulate, device_list(devices)));
  }
  const alloc_sim::AllocatorConfig recorded =
      alloc_sim::AllocatorConfig::from_settings(snapshot->settings);
  std::vector<std::pair<std::string, alloc_sim::AllocatorConfig>> candidates;
  candidates.emplace_back(
      snapshot->settings.present ? "as recorded" : "as recorded (defaults: no allocator_settings)",
      recorded);
  for (const auto& config : user_configs) candidates.push_back(config);
  if (!options.no_sweep) {
    // The sweep's first candidate is its base itself, already in the list.
    auto swept = alloc_sim::sweep(user_configs.empty() ? recorded : user_configs.front().second);
    for (size_t i = 1; i < swept.size(); ++i) candidates.push_back(std::move(swept[i]));
  }
  nlohmann::json report = report_header("simulate");
  report["snapshot"] = options.simulate;
  report["layout"] = report::snapshot_facts_json(*snapshot);
  nlohmann::json device_reports = nlohmann::json::array();
  bool any_trace = false;
  for (size_t d = 0; d < snapshot->device_traces.size(); ++d) {
    if (options.device >= 0 && static_cast<size_t>(options.device) != d) continue;
    const auto& trace = snapshot->device_traces[d];
    if (trace.empty()) continue;
    any_trace = true;
    std::vector<uint64_t> snapshot_sizes;
    uint64_t snapshot_reserved = 0;
    for (const torch::Segment& segment : snapshot->segments) {
      if (segment.device != static_cast<int>(d)) continue;
      snapshot_sizes.push_back(segment.total_size);
      snapshot_reserved += segment.total_size;
    }
    alloc_sim::SimOptions sim_options;
    sim_options.device_capacity = capacity;
    sim_options.snapshot_reserved_bytes = snapshot_reserved;
    std::vector<std::pair<std::string, alloc_sim::SimResult>> results;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const auto& [label, config] = candidates[i];
      auto result = alloc_sim::simulate(trace, config, sim_options);
      if (!result) {
        // A --config the model cannot run (backend:cudaMallocAsync) is the user's choice; the
        // recorded settings (and the sweep built on them) are the snapshot's.
        const bool users = i >= 1 && i <= user_configs.size();
        const std::string message = fmt::format("{}: device {}: {}: {}", options.simulate, d,
                                                label, result.message());
        return users ? usage_error(message) : input_error(message);
      }
      results.emplace_back(label, std::move(*result));
    }
    const alloc_sim::SimResult& as_recorded = results.front().second;
    const uint64_t recorded_ooms = as_recorded.recorded_ooms;
    std::vector<uint64_t> simulated_sizes = as_recorded.final_segment_sizes;
    std::sort(simulated_sizes.begin(), simulated_sizes.end());
    std::sort(snapshot_sizes.begin(), snapshot_sizes.end());
    const bool reproduces = as_recorded.complete && simulated_sizes == snapshot_sizes &&
                            as_recorded.final_reserved_bytes == snapshot_reserved;
    std::cout << fmt::format("device {}: {} trace entries{}\n", d, trace.size(),
                             recorded_ooms > 0 ? fmt::format(", {} OOM recorded", recorded_ooms) : "");
    if (!as_recorded.complete) {
      std::cout << fmt::format(
          "  the trace starts mid-ring-buffer ({} frees of blocks allocated before it): the "
          "replays start from an empty allocator, so the figures are not the run's own\n",
          as_recorded.unknown_frees);
    } else {
      std::cout << fmt::format(
          "  model check: the recorded settings give {} segments, {} reserved; the snapshot has "
          "{}, {}: {}\n",
          simulated_sizes.size(), format_bytes(as_recorded.final_reserved_bytes),
          snapshot_sizes.size(), format_bytes(snapshot_reserved),
          reproduces ? "reproduced" : "NOT reproduced (treat the comparison with care)");
    }
    if (as_recorded.device_capacity > 0) {
      std::cout << fmt::format("  device capacity: {}{}\n", format_bytes(as_recorded.device_capacity),
                               capacity > 0 ? " (--capacity)" : " (from the recorded OOM)");
    }
    for (const std::string& note : as_recorded.notes) std::cout << "  note: " << note << "\n";
    // "OOM again": whether the OOM the run recorded happens in this replay too.
    std::cout << fmt::format("  {:<52} {:>12} {:>9} {:>9} {:>5} {:>9} {:>7}\n",
                             "PYTORCH_CUDA_ALLOC_CONF", "peak reserv.", "frag@peak", "peak frag",
                             "OOMs", "OOM again", "retries");
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& [label, r] : results) {
      const std::string conf = r.config.empty() ? "(defaults)" : r.config;
      const std::string again =
          r.recorded_ooms == 0 ? "-" : (r.recorded_ooms_reproduced > 0 ? "yes" : "no");
      std::cout << fmt::format("  {:<52} {:>12} {:>9.3f} {:>9.3f} {:>5} {:>9} {:>7}   {}\n",
                               conf.substr(0, 52), format_bytes(r.peak_reserved_bytes),
                               r.fragmentation_at_peak, r.peak_fragmentation, r.ooms, again,
                               r.retries, label);
      rows.push_back({{"label", label},
                      {"config", r.config},
                      {"peak_reserved_bytes", r.peak_reserved_bytes},
                      {"peak_allocated_bytes", r.peak_allocated_bytes},
                      {"final_reserved_bytes", r.final_reserved_bytes},
                      {"peak_fragmentation", r.peak_fragmentation},
                      {"fragmentation_at_peak", r.fragmentation_at_peak},
                      {"ooms", r.ooms},
                      {"recorded_ooms_reproduced", r.recorded_ooms_reproduced},
                      {"retries", r.retries},
                      {"gc_freed_bytes", r.gc_freed_bytes},
                      {"device_capacity_bytes", r.device_capacity},
                      {"device_allocs", r.device_allocs},
                      {"device_frees", r.device_frees},
                      {"segments", r.final_segment_sizes.size()},
                      {"complete", r.complete},
                      {"notes", r.notes}});
    }
    const alloc_sim::Recommendation recommendation = alloc_sim::recommend(results, candidates);
    const std::string line = recommendation.export_line;
    const std::string& reason = recommendation.reason;
    const std::string chosen_config = results[recommendation.index].second.config;
    std::cout << fmt::format("  recommended: {}\n    ({})\n",
                             line.empty() ? "keep the recorded settings" : line, reason);
    device_reports.push_back({{"device", d},
                              {"entries", trace.size()},
                              {"recorded_ooms", recorded_ooms},
                              {"complete", as_recorded.complete},
                              {"reproduces_snapshot", reproduces},
                              {"candidates", std::move(rows)},
                              {"recommended", {{"config", chosen_config},
                                               {"label", results[recommendation.index].first},
                                               {"line", line},
                                               {"reason", reason}}}});
  }
  if (!any_trace) {
    return input_error(fmt::format(
        "{}: no device_traces to replay (record with torch.cuda.memory._record_memory_history "
        "before dumping the snapshot)",
        options.simulate));
  }
  report["devices"] = std::move(device_reports);
  return write_json(options.output, report);
}

nlohmann::json arena_json(const glibc_heap::Arena& arena) {
  nlohmann::json sizes = nlohmann::json::array();
  for (const glibc_heap::SizeBucket& bucket : arena.sizes) {
    sizes.push_back({{"kind", bucket.unsorted ? "unsorted" : "size"},
                     {"from_bytes", bucket.from_bytes},
                     {"to_bytes", bucket.to_bytes},
                     {"total_bytes", bucket.total_bytes},
                     {"count", bucket.count}});
  }
  return {{"arena", arena.number},
          {"main", arena.number == 0},
          {"system_bytes", arena.system_bytes},
          {"system_max_bytes", arena.system_max_bytes},
          {"free_bytes", arena.free_bytes()},
          {"in_use_bytes", arena.in_use_bytes()},
          {"fast_free_bytes", arena.fast_bytes},
          {"free_chunks", arena.free_chunks()},
          {"top_chunk_bytes", arena.top_chunk_bytes()},
          {"trim_estimate_bytes", arena.trim_estimate_bytes()},
          {"subheaps", arena.subheaps},
          {"free_sizes", std::move(sizes)}};
}

// --pid: asks the process's tracker for mallinfo2 + malloc_info, and reads the answer.
int heap_command(const GlobalOptions& global, const FragmentOptions& options) {
  const glibc_heap::Answer answer =
      glibc_heap::ask_tracked_process(global.proc_root, options.pid, options.wait_seconds);
  switch (answer.outcome) {
    case glibc_heap::Outcome::answered: break;
    case glibc_heap::Outcome::no_process: return usage_error(fmt::format("--pid {}: {}", options.pid, answer.message));
    case glibc_heap::Outcome::not_tracked: return input_error(answer.message);
    case glibc_heap::Outcome::no_permission:
    case glibc_heap::Outcome::no_answer:
    case glibc_heap::Outcome::failed:
      std::cerr << "memscope fragment: " << answer.message << "\n";
      return kExitFailure;
  }
  auto heap = glibc_heap::parse_heap_report(answer.text);
  if (!heap) {
    return input_error(fmt::format("process {}'s heap report: {}", options.pid, heap.message()));
  }
  const glibc_heap::MallInfo2& info = heap->mallinfo;
  uint64_t system = 0;
  uint64_t free_bytes = 0;
  uint64_t free_chunks = 0;
  nlohmann::json arenas = nlohmann::json::array();
  std::cout << fmt::format("process {}: glibc heap, {} arena{}\n", options.pid, heap->arenas.size(),
                           heap->arenas.size() == 1 ? "" : "s");
  std::cout << fmt::format("  {:<7} {:>12} {:>12} {:>12} {:>11} {:>12} {:>12}\n", "arena", "system",
                           "in use", "free", "free chunks", "top chunk", "trim (est.)");
  for (const glibc_heap::Arena& arena : heap->arenas) {
    system += arena.system_bytes;
    free_bytes += arena.free_bytes();
    free_chunks += arena.free_chunks();
    std::cout << fmt::format("  {:<7} {:>12} {:>12} {:>12} {:>11} {:>12} {:>12}\n",
                             arena.number == 0 ? "0 main" : std::to_string(arena.number),
                             format_bytes(arena.system_bytes), format_bytes(arena.in_use_bytes()),
                             format_bytes(arena.free_bytes()), arena.free_chunks(),
                             format_bytes(arena.top_chunk_bytes()),
                             format_bytes(arena.trim_estimate_bytes()));
    arenas.push_back(arena_json(arena));
  }
  const uint64_t in_use = system > free_bytes ? system - free_bytes : 0;
  const uint64_t trim = glibc_heap::trim_estimate_bytes(*heap);
  std::cout << fmt::format("  total: {} from the system, {} in use, {} free in {} chunks\n",
                           format_bytes(system), format_bytes(in_use), format_bytes(free_bytes),
                           free_chunks);
  std::cout << fmt::format("  top chunk (releasable): {}\n", format_bytes(info.keepcost));
  std::cout << fmt::format("  mmapped chunks: {} in {}\n", format_bytes(info.hblkhd), info.hblks);
  std::cout << fmt::format("  malloc_trim would return about {} (estimate: the top chunk, and the "
                           "whole pages inside free chunks)\n", format_bytes(trim));
  nlohmann::json report = report_header("heap");
  report["pid"] = options.pid;
  report["arenas"] = std::move(arenas);
  report["totals"] = {{"arenas", heap->arenas.size()},
                      {"system_bytes", system},
                      {"in_use_bytes", in_use},
                      {"free_bytes", free_bytes},
                      {"free_chunks", free_chunks},
                      {"top_chunk_releasable_bytes", info.keepcost},
                      {"mmap_chunks", info.hblks},
                      {"mmap_bytes", info.hblkhd}};
  report["mallinfo2"] = {{"arena_bytes", info.arena},       {"ordblks", info.ordblks},
                         {"smblks", info.smblks},           {"hblks", info.hblks},
                         {"hblkhd_bytes", info.hblkhd},     {"fsmblks_bytes", info.fsmblks},
                         {"uordblks_bytes", info.uordblks}, {"fordblks_bytes", info.fordblks},
                         {"keepcost_bytes", info.keepcost}};
  report["trim_estimate_bytes"] = trim;
  return write_json(options.output, report);
}

int fragment_command(const GlobalOptions& global, const FragmentOptions& options) {
  const int sources = (options.snapshot.empty() ? 0 : 1) + (options.compare.empty() ? 0 : 1) +
                      (options.simulate.empty() ? 0 : 1) + (options.pid != 0 ? 1 : 0);
  if (sources != 1) {
    return usage_error("give one of --snapshot FILE, --compare A B, --simulate FILE, --pid PID");
  }
  if (options.pid < 0) return usage_error(fmt::format("--pid {} is not a process id", options.pid));
  if (options.wait_option->count() > 0 && options.pid == 0) return usage_error("--wait goes with --pid");
  if (!(options.wait_seconds >= 0) || !std::isfinite(options.wait_seconds)) {
    return usage_error(fmt::format("--wait must be 0 or more seconds (got {})", options.wait_seconds));
  }
  if (options.timeline && options.snapshot.empty()) return usage_error("--timeline goes with --snapshot");
  if (!options.configs.empty() && options.simulate.empty()) return usage_error("--config goes with --simulate");
  if (!options.capacity.empty() && options.simulate.empty()) return usage_error("--capacity goes with --simulate");
  if (options.top == 0) return usage_error("--top must be at least 1");
  if (const int checked = check_outputs(options); checked != kExitOk) return checked;
  if (!options.snapshot.empty()) return snapshot_command(options);
  if (!options.compare.empty()) return compare_command(options);
  if (options.pid != 0) return heap_command(global, options);
  return simulate_command(options);
}

}  // namespace

Runner attach_fragment(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<FragmentOptions>();
  sub.add_option("-s,--snapshot", options->snapshot,
                 "A PyTorch memory snapshot (torch.cuda.memory._dump_snapshot) to analyse");
  sub.add_option("--compare", options->compare,
                 "Two snapshots A B: what is live in B and not in A, segments gained and lost")
      ->expected(2);
  sub.add_option("--simulate", options->simulate,
                 "Replay the snapshot's recorded allocations under other allocator settings");
  sub.add_option("-d,--device", options->device, "Only this CUDA device");
  sub.add_option("-o,--output", options->output, "JSON report (memscope-fragment)");
  sub.add_option("--plot", options->plot,
                 "Segment map (.svg/.png), or with --timeline memory over time (.html/.svg/.png)");
  sub.add_flag("--timeline", options->timeline,
               "Allocated and reserved memory over the recorded trace, OOMs marked");
  sub.add_option("--top", options->top, "Call sites shown per device")->capture_default_str();
  sub.add_option("--config", options->configs,
                 "With --simulate: a PYTORCH_CUDA_ALLOC_CONF value to try (repeatable)");
  sub.add_flag("--no-sweep", options->no_sweep,
               "With --simulate: only the recorded settings and --config ones, not the built-in sweep");
  sub.add_option("--capacity", options->capacity,
                 "With --simulate: the device memory the allocator may use (default: from the "
                 "recorded OOM, else unlimited)");
  sub.add_option("--pid", options->pid,
                 "The glibc heap of a process started by memscope leak --enable-tracking: arenas, "
                 "free chunks, top chunk, what malloc_trim would return");
  options->wait_option = sub.add_option("--wait", options->wait_seconds, "With --pid: seconds to wait for its answer")
      ->capture_default_str();
  return [&global, options]() { return fragment_command(global, *options); };
}

}  // namespace memscope::cli
