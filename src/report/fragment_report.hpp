// Outputs of `memscope fragment`: the terminal summary per device, the JSON report
// ("memscope-fragment", docs/report-formats.md), the segment map picture (each segment a bar,
// its blocks coloured by state; drawn by gnuplot) and the memory-over-time chart of the
// recorded trace (HTML page or gnuplot image).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analyze/fragmentation.hpp"
#include "core/result.hpp"
#include "core/torch_snapshot.hpp"

namespace memscope::report {

// What a site of the snapshot is called: the innermost frame outside PyTorch's own files
// (…/torch/…, C++ frames of libtorch and c10), else the innermost one.
struct SiteName {
  std::string function;  // "??" without frames
  std::string location;  // "file.py:12", "" without frames
};
SiteName site_name(const torch::FrameTable& frames, uint32_t stack);

// {"stack frames", "bytes", "count", "function", "location", "frames": [{filename,line,name}]}
nlohmann::json site_json(const torch::FrameTable& frames, const fragment::SiteBytes& site);

nlohmann::json device_json(const torch::Snapshot& snapshot,
                           const fragment::DeviceFragmentation& device);
// At most max_points points (the largest values of each stretch, so peaks survive).
nlohmann::json timeline_json(const fragment::Timeline& timeline, size_t max_points = 2000);
nlohmann::json comparison_json(const torch::Snapshot& b, const fragment::Comparison& comparison);
// layout facts and allocator_settings of a snapshot.
nlohmann::json snapshot_facts_json(const torch::Snapshot& snapshot);

std::string device_text(const torch::Snapshot& snapshot,
                        const fragment::DeviceFragmentation& device, size_t top_sites);
std::string timeline_text(const fragment::Timeline& timeline, size_t rows = 20);
std::string comparison_text(const torch::Snapshot& b, const fragment::Comparison& comparison);

// The segment map of the snapshot's devices (`device` ≥ 0: only that one) into an .svg or
// .png (gnuplot); at most max_segments bars, the largest segments, in address order.
Status write_segment_map(const std::string& path, const torch::Snapshot& snapshot, int device,
                         const std::string& title, size_t max_segments = 64,
                         const std::string& gnuplot = "gnuplot");
// Allocated and reserved bytes over time with the OOMs marked, one chart per device: .html,
// .svg or .png.
Status write_timeline_plot(const std::string& path,
                           const std::vector<fragment::Timeline>& timelines,
                           const std::string& title, const std::string& gnuplot = "gnuplot");

}  // namespace memscope::report
