#include "report/fragment_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/alloc_trace.hpp"
#include "core/units.hpp"
#include "report/charts.hpp"
#include "report/escape.hpp"
#include "report/gnuplot.hpp"
#include "report/html_page.hpp"
#include "report/output_file.hpp"
#include "report/plot.hpp"

namespace memscope::report {

namespace {

using fragment::DeviceFragmentation;
using fragment::SiteBytes;
using fragment::Timeline;


bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// PyTorch's own frames: its Python files and the C++ of libtorch / c10.
bool torch_frame(const torch::Frame& frame) {
  const std::string& file = frame.filename;
  return contains(file, "/torch/") || file.rfind("torch/", 0) == 0 || file == "??" ||
         contains(frame.name, "c10::") || contains(frame.name, "at::") ||
         contains(frame.name, "torch::");
}

double mib(uint64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(kMiB); }

std::string percent(double fraction) { return fmt::format("{:.1f}%", 100.0 * fraction); }

}  // namespace

SiteName site_name(const torch::FrameTable& frames, uint32_t stack) {
  const auto [ids, count] = frames.stack(stack);
  if (count == 0) return {"??", ""};
  size_t chosen = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!torch_frame(frames.frame(ids[i]))) {
      chosen = i;
      break;
    }
  }
  const torch::Frame& frame = frames.frame(ids[chosen]);
  return {frame.name.empty() ? "??" : frame.name,
          fmt::format("{}:{}", alloc::file_name_of(frame.filename), frame.line)};
}

nlohmann::json site_json(const torch::FrameTable& frames, const SiteBytes& site) {
  const SiteName name = site_name(frames, site.stack);
  nlohmann::json out = {{"function", valid_utf8(name.function)},
                        {"location", valid_utf8(name.location)},
                        {"bytes", site.bytes},
                        {"count", site.count}};
  nlohmann::json list = nlohmann::json::array();
  const auto [ids, count] = frames.stack(site.stack);
  for (size_t i = 0; i < count; ++i) {
    const torch::Frame& frame = frames.frame(ids[i]);
    list.push_back({{"filename", valid_utf8(frame.filename)},
                    {"line", frame.line},
                    {"name", valid_utf8(frame.name)}});
  }
  out["frames"] = std::move(list);
  return out;
}

nlohmann::json device_json(const torch::Snapshot& snapshot, const DeviceFragmentation& d) {
  nlohmann::json segments = nlohmann::json::array();
  for (const fragment::SegmentSummary& s : d.segments) {
    segments.push_back({{"address", s.address},
                        {"total_bytes", s.total_bytes},
                        {"allocated_bytes", s.allocated_bytes},
                        {"free_bytes", s.free_bytes},
                        {"stream", s.stream},
                        {"segment_type", s.large ? "large" : "small"},
                        {"expandable", s.expandable},
                        {"blocks", s.blocks},
                        {"occupancy", s.occupancy}});
  }
  nlohmann::json sites = nlohmann::json::array();
  for (const SiteBytes& site : d.top_sites) sites.push_back(site_json(snapshot.frames, site));
  nlohmann::json inconsistencies = nlohmann::json::array();
  for (const std::string& text : d.inconsistencies) inconsistencies.push_back(text);
  return {{"device", d.device},
          {"reserved_bytes", d.reserved_bytes},
          {"allocated_bytes", d.allocated_bytes},
          {"active_bytes", d.active_bytes},
          {"requested_bytes", d.requested_bytes},
          {"pending_free_bytes", d.pending_free_bytes},
          {"internal_free_bytes", d.internal_free_bytes},
          {"external_free_bytes", d.external_free_bytes},
          {"inactive_split_bytes", d.inactive_split_bytes},
          {"largest_free_block_bytes", d.largest_free_block_bytes},
          {"external_fragmentation", d.external_fragmentation},
          {"segment_count", d.segment_count},
          {"block_count", d.block_count},
          {"max_split_size_bytes", d.max_split_size},
          {"oversize_count", d.oversize_count},
          {"oversize_bytes", d.oversize_bytes},
          {"oversize_share", d.oversize_share},
          {"identity_holds", d.identity_holds},
          {"inconsistencies", std::move(inconsistencies)},
          {"segments", std::move(segments)},
          {"top_sites", std::move(sites)}};
}

namespace {

// Rows of at most max_points: each stretch of points keeps its largest values (peaks survive).
std::vector<fragment::TimelinePoint> thinned(const std::vector<fragment::TimelinePoint>& points,
                                             size_t max_points) {
  if (points.size() <= max_points || max_points < 2) return points;
  std::vector<fragment::TimelinePoint> out;
  const size_t buckets = max_points - 1;  // the last point is kept as it is
  const double per_bucket = static_cast<double>(points.size() - 1) / static_cast<double>(buckets);
  for (size_t b = 0; b < buckets; ++b) {
    const auto begin = static_cast<size_t>(std::floor(static_cast<double>(b) * per_bucket));
    const auto end = std::min(points.size() - 1,
                              static_cast<size_t>(std::floor(static_cast<double>(b + 1) * per_bucket)));
    fragment::TimelinePoint point = points[begin];
    for (size_t i = begin; i < std::max(end, begin + 1); ++i) {
      point.allocated_bytes = std::max(point.allocated_bytes, points[i].allocated_bytes);
      point.reserved_bytes = std::max(point.reserved_bytes, points[i].reserved_bytes);
    }
    out.push_back(point);
  }
  out.push_back(points.back());
  return out;
}

}  // namespace

nlohmann::json timeline_json(const Timeline& timeline, size_t max_points) {
  nlohmann::json points = nlohmann::json::array();
  for (const fragment::TimelinePoint& p : thinned(timeline.points, max_points)) {
    points.push_back({{"t_seconds", p.t_seconds},
                      {"allocated_bytes", p.allocated_bytes},
                      {"reserved_bytes", p.reserved_bytes}});
  }
  nlohmann::json ooms = nlohmann::json::array();
  for (const fragment::OomMark& oom : timeline.ooms) {
    ooms.push_back({{"t_seconds", oom.t_seconds},
                    {"requested_bytes", oom.requested_bytes},
                    {"device_free_bytes", oom.device_free_bytes},
                    {"allocated_bytes", oom.allocated_bytes},
                    {"reserved_bytes", oom.reserved_bytes}});
  }
  return {{"device", timeline.device},
          {"entries", timeline.points.empty() ? 0 : timeline.points.size() - 1},
          {"time_axis", timeline.has_times ? "seconds" : "entry"},
          {"anchored", timeline.anchored},
          {"peak_allocated_bytes", timeline.peak_allocated_bytes},
          {"peak_reserved_bytes", timeline.peak_reserved_bytes},
          {"ooms", std::move(ooms)},
          {"points", std::move(points)}};
}

nlohmann::json comparison_json(const torch::Snapshot& b, const fragment::Comparison& c) {
  nlohmann::json sites = nlohmann::json::array();
  for (const SiteBytes& site : c.new_live) sites.push_back(site_json(b.frames, site));
  const auto changes = [](const std::vector<fragment::SegmentChange>& list) {
    nlohmann::json out = nlohmann::json::array();
    for (const fragment::SegmentChange& change : list) {
      out.push_back({{"device", change.device}, {"address", change.address}, {"bytes", change.bytes}});
    }
    return out;
  };
  return {{"new_live_bytes", c.new_live_bytes},
          {"new_live_count", c.new_live_count},
          {"new_live_sites", std::move(sites)},
          {"segments_gained", changes(c.gained)},
          {"segments_lost", changes(c.lost)},
          {"reserved_delta_bytes", c.reserved_delta_bytes},
          {"allocated_delta_bytes", c.allocated_delta_bytes}};
}

nlohmann::json snapshot_facts_json(const torch::Snapshot& snapshot) {
  nlohmann::json settings = nullptr;
  if (snapshot.settings.present) {
    nlohmann::json divisions = nlohmann::json::object();
    for (const auto& [bucket, value] : snapshot.settings.roundup_power2_divisions) {
      divisions[std::to_string(bucket)] = value;
    }
    settings = {{"PYTORCH_CUDA_ALLOC_CONF", valid_utf8(snapshot.settings.conf)},
                {"max_split_size", snapshot.settings.max_split_size},
                {"garbage_collection_threshold", snapshot.settings.garbage_collection_threshold},
                {"expandable_segments", snapshot.settings.expandable_segments},
                {"roundup_power2_divisions", std::move(divisions)}};
  }
  size_t entries = 0;
  for (const auto& trace : snapshot.device_traces) entries += trace.size();
  return {{"bare_segment_list", snapshot.bare_segment_list},
          {"block_addresses", snapshot.block_addresses},
          {"block_history", snapshot.block_history},
          {"segments", snapshot.segments.size()},
          {"trace_entries", entries},
          {"frames", snapshot.frames.frame_count()},
          {"stacks", snapshot.frames.stack_count() - 1},
          {"annotations", snapshot.annotations.size()},
          {"unknown_fields", snapshot.unknown_fields},
          {"unknown_actions", snapshot.unknown_actions},
          {"allocator_settings", std::move(settings)}};
}

std::string device_text(const torch::Snapshot& snapshot, const DeviceFragmentation& d,
                        size_t top_sites) {
  std::string out = fmt::format("device {}: {} reserved in {} segments ({} blocks)\n", d.device,
                                format_bytes(d.reserved_bytes), d.segment_count, d.block_count);
  const auto share = [&](uint64_t bytes) {
    return d.reserved_bytes > 0 ? percent(static_cast<double>(bytes) /
                                          static_cast<double>(d.reserved_bytes))
                                : std::string("-");
  };
  const auto line = [&](const char* label, uint64_t bytes, const std::string& note) {
    out += fmt::format("  {:<24}{:>12} {:>7}{}\n", label, format_bytes(bytes), share(bytes),
                       note.empty() ? "" : "  " + note);
  };
  line("allocated", d.allocated_bytes, fmt::format("requested {}", format_bytes(d.requested_bytes)));
  line("internal free (slack)", d.internal_free_bytes, "rounding of allocated blocks");
  line("external free", d.external_free_bytes,
       fmt::format("largest free block {}", format_bytes(d.largest_free_block_bytes)));
  if (d.pending_free_bytes > 0) line("pending free", d.pending_free_bytes, "freed, stream work pending");
  line("inactive split", d.inactive_split_bytes, "free inside split segments: empty_cache cannot return it");
  out += fmt::format("  external fragmentation  {:.3f}  (1 - largest free block / free)\n",
                     d.external_fragmentation);
  if (d.max_split_size > 0) {
    out += fmt::format("  oversize blocks (>= max_split_size {}): {} holding {} ({})\n",
                       format_bytes(d.max_split_size), d.oversize_count,
                       format_bytes(d.oversize_bytes), percent(d.oversize_share));
  }
  if (d.identity_holds) {
    out += "  check: requested + internal + external + pending free == reserved (holds)\n";
  } else {
    for (const std::string& text : d.inconsistencies) out += "  does not add up: " + text + "\n";
  }
  if (!d.segments.empty()) {
    size_t low = 0;
    for (const fragment::SegmentSummary& s : d.segments) low += s.occupancy < 0.5 ? 1 : 0;
    out += fmt::format("  segments under half occupied: {} of {}\n", low, d.segments.size());
  }
  if (!d.top_sites.empty()) {
    out += "  held by (active blocks):\n";
    for (size_t i = 0; i < d.top_sites.size() && i < top_sites; ++i) {
      const SiteBytes& site = d.top_sites[i];
      const SiteName name = site_name(snapshot.frames, site.stack);
      out += fmt::format("    {:>12} {:>6}  {}  {}\n", format_bytes(site.bytes), site.count,
                         valid_utf8(name.function), valid_utf8(name.location));
    }
  }
  return out;
}

std::string timeline_text(const Timeline& timeline, size_t rows) {
  std::string out = fmt::format(
      "device {} trace: {} entries, peak allocated {}, peak reserved {}{}\n", timeline.device,
      timeline.points.empty() ? 0 : timeline.points.size() - 1,
      format_bytes(timeline.peak_allocated_bytes), format_bytes(timeline.peak_reserved_bytes),
      timeline.anchored ? "" : " (the trace does not match the segments: levels from zero)");
  const std::string axis = timeline.has_times ? "time" : "entry";
  out += fmt::format("  {:>10}  {:>12}  {:>12}\n", axis, "allocated", "reserved");
  for (const fragment::TimelinePoint& p : thinned(timeline.points, rows)) {
    out += fmt::format("  {:>10}  {:>12}  {:>12}\n",
                       timeline.has_times ? format_duration(p.t_seconds)
                                          : fmt::format("{:.0f}", p.t_seconds),
                       format_bytes(p.allocated_bytes), format_bytes(p.reserved_bytes));
  }
  for (const fragment::OomMark& oom : timeline.ooms) {
    out += fmt::format("  OOM at {}: asked for {} with {} free on the device ({} reserved)\n",
                       timeline.has_times ? format_duration(oom.t_seconds)
                                          : fmt::format("entry {:.0f}", oom.t_seconds),
                       format_bytes(oom.requested_bytes), format_bytes(oom.device_free_bytes),
                       format_bytes(oom.reserved_bytes));
  }
  return out;
}

std::string comparison_text(const torch::Snapshot& b, const fragment::Comparison& c) {
  std::string out = fmt::format(
      "live in B and not in A: {} in {} blocks; reserved {}, allocated {}\n",
      format_bytes(c.new_live_bytes), c.new_live_count, format_bytes_delta(c.reserved_delta_bytes),
      format_bytes_delta(c.allocated_delta_bytes));
  for (const SiteBytes& site : c.new_live) {
    const SiteName name = site_name(b.frames, site.stack);
    out += fmt::format("  {:>12} {:>6}  {}  {}\n", format_bytes(site.bytes), site.count,
                       valid_utf8(name.function), valid_utf8(name.location));
  }
  const auto total = [](const std::vector<fragment::SegmentChange>& list) {
    uint64_t bytes = 0;
    for (const fragment::SegmentChange& change : list) bytes += change.bytes;
    return bytes;
  };
  out += fmt::format("segments gained: {} ({}), lost: {} ({})\n", c.gained.size(),
                     format_bytes(total(c.gained)), c.lost.size(), format_bytes(total(c.lost)));
  return out;
}

namespace {

constexpr const char* kAllocatedColor = "0x1f77b4";
constexpr const char* kPendingColor = "0xff7f0e";
constexpr const char* kFreeColor = "0xd0d4d9";

}  // namespace

Status write_segment_map(const std::string& path, const torch::Snapshot& snapshot, int device,
                         const std::string& title, size_t max_segments,
                         const std::string& gnuplot) {
  auto format = plot_format(path);
  if (!format) return format.error();
  if (*format == PlotFormat::kHtml) {
    return make_error(fmt::format(
        "cannot draw the segment map into '{}': it is an image, .svg or .png", path));
  }
  std::vector<const torch::Segment*> chosen;
  for (const torch::Segment& segment : snapshot.segments) {
    if (device < 0 || segment.device == device) chosen.push_back(&segment);
  }
  if (chosen.empty()) return make_error(fmt::format("nothing to draw into '{}': no segments", path));
  size_t left_out = 0;
  if (chosen.size() > max_segments) {
    std::stable_sort(chosen.begin(), chosen.end(), [](const torch::Segment* a, const torch::Segment* b) {
      return a->total_size > b->total_size;
    });
    left_out = chosen.size() - max_segments;
    chosen.resize(max_segments);
  }
  std::sort(chosen.begin(), chosen.end(), [](const torch::Segment* a, const torch::Segment* b) {
    return std::tie(a->device, a->address) < std::tie(b->device, b->address);
  });
  std::string data;
  std::string ytics;
  double widest = 0;
  for (size_t row = 0; row < chosen.size(); ++row) {
    const torch::Segment& segment = *chosen[row];
    const auto y = static_cast<double>(chosen.size() - 1 - row);  // the first on top
    double offset = 0;
    for (const torch::Block& block : segment.blocks) {
      const double size = mib(block.size);
      const char* color = block.state == torch::BlockState::active_allocated      ? kAllocatedColor
                          : block.state == torch::BlockState::active_pending_free ? kPendingColor
                                                                                  : kFreeColor;
      fmt::format_to(std::back_inserter(data), "{:.6f}\t{:.1f}\t{:.6f}\t{:.6f}\t{:.2f}\t{:.2f}\t{}\n",
                     offset + size / 2, y, offset, offset + size, y - 0.38, y + 0.38, color);
      offset += size;
    }
    widest = std::max(widest, offset);
    ytics += fmt::format("{}{} {:.0f}", ytics.empty() ? "" : ", ",
                         gnuplot_quote(fmt::format("gpu{} {:#x} {}", segment.device, segment.address,
                                                   format_bytes(segment.total_size))),
                         y);
  }
  const std::string full_title =
      left_out == 0 ? title
                    : fmt::format("{} ({} smaller segments not shown)", title, left_out);
  const std::string_view image_format = *format == PlotFormat::kSvg ? "svg" : "png";
  const int height = 120 + 22 * static_cast<int>(chosen.size());
  return render_gnuplot_script(
      {{"blocks.dat", data}},
      [&](const std::string& dir, const std::string& image) {
        std::string script;
        if (image_format == "png") {
          script += fmt::format(
              "set terminal pngcairo size 1200,{} font 'DejaVu Sans,9' noenhanced background "
              "rgb 'white'\n",
              height);
        } else {
          script += fmt::format(
              "set terminal svg size 1200,{} dynamic font 'DejaVu Sans,10' noenhanced "
              "background rgb 'white'\n",
              height);
        }
        script += fmt::format("set output {}\n", gnuplot_quote(image));
        script += "set datafile separator '\\t'\n";
        script += fmt::format("set title {}\n", gnuplot_quote(full_title));
        script += "set xlabel 'offset in the segment (MiB)'\nset lmargin 30\n";
        script += fmt::format("set xrange [0:{:.6f}]\n", widest > 0 ? widest * 1.02 : 1.0);
        script += fmt::format("set yrange [-0.6:{:.1f}]\n", static_cast<double>(chosen.size()) - 0.4);
        script += fmt::format("set ytics ({}) nomirror\nset tics front\n", ytics);
        script += "set key outside below center horizontal\nset style fill solid 1.0 border rgb 'white'\n";
        script += fmt::format(
            "plot {} using 1:2:3:4:5:6:7 with boxxyerror lc rgb variable notitle, \\\n"
            "  NaN with boxes fs solid lc rgb '#{}' title 'allocated', \\\n"
            "  NaN with boxes fs solid lc rgb '#{}' title 'pending free', \\\n"
            "  NaN with boxes fs solid lc rgb '#{}' title 'free (inactive)'\n",
            gnuplot_quote(dir + "/blocks.dat"), std::string_view(kAllocatedColor).substr(2),
            std::string_view(kPendingColor).substr(2), std::string_view(kFreeColor).substr(2));
        script += "set output\n";
        return script;
      },
      image_format, path, gnuplot);
}

Status write_timeline_plot(const std::string& path, const std::vector<Timeline>& timelines,
                           const std::string& title, const std::string& gnuplot) {
  auto format = plot_format(path);
  if (!format) return format.error();
  std::vector<Chart> charts;
  for (const Timeline& timeline : timelines) {
    Chart chart;
    chart.id = fmt::format("gpu{}", timeline.device);
    chart.title = fmt::format("GPU {}: the caching allocator over the recorded trace", timeline.device);
    chart.subtitle = timeline.has_times ? "seconds since the first entry" : "entries (no times recorded)";
    chart.labels = {"allocated (requested bytes)", "reserved (segments)"};
    const bool big = timeline.peak_reserved_bytes >= 4 * kGiB;
    chart.unit_bytes = big ? kGiB : kMiB;
    chart.unit = big ? "GiB" : "MiB";
    for (const fragment::TimelinePoint& p : thinned(timeline.points, 4000)) {
      chart.rows.push_back({p.t_seconds, {static_cast<double>(p.allocated_bytes),
                                          static_cast<double>(p.reserved_bytes)}});
    }
    for (const fragment::OomMark& oom : timeline.ooms) {
      chart.peaks.push_back({1, oom.t_seconds, static_cast<double>(oom.reserved_bytes),
                             fmt::format("OOM: asked {}, {} free", format_bytes(oom.requested_bytes),
                                         format_bytes(oom.device_free_bytes))});
    }
    charts.push_back(std::move(chart));
  }
  if (charts.empty()) return make_error(fmt::format("nothing to plot into '{}': no trace entries", path));
  if (*format == PlotFormat::kHtml) {
    HtmlPage page;
    page.title = title;
    page.charts = std::move(charts);
    return write_file(path, render_html_page(page));
  }
  return render_with_gnuplot(charts, title, *format == PlotFormat::kSvg ? "svg" : "png", path,
                             gnuplot);
}

}  // namespace memscope::report
