#include "cli/leak_tracking.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <optional>
#include <sstream>

#include "cli/common.hpp"
#include "collect/alloc_trace.hpp"
#include "collect/symbolize.hpp"
#include "core/units.hpp"

namespace memscope::cli {
namespace {

namespace fs = std::filesystem;

std::string own_directory() {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  return error ? std::string() : exe.parent_path().string();
}

}  // namespace

Result<std::string> find_tracker_library() {
  if (const char* configured = std::getenv("MEMSCOPE_TRACK_LIBRARY"); configured && *configured) {
    if (access(configured, R_OK) != 0) {
      return make_error(fmt::format(
          "the tracker library '{}' (MEMSCOPE_TRACK_LIBRARY) cannot be read", configured));
    }
    return std::string(configured);
  }
  const std::string dir = own_directory();
  const std::vector<std::string> candidates = {dir + "/libmemscope_track.so",
                                               dir + "/../lib/memscope/libmemscope_track.so"};
  for (const std::string& candidate : candidates) {
    if (access(candidate.c_str(), R_OK) == 0) return fs::absolute(candidate).lexically_normal().string();
  }
  return make_error(fmt::format(
      "the tracker library libmemscope_track.so is not beside memscope ({}) nor in {}; set "
      "MEMSCOPE_TRACK_LIBRARY to its path",
      candidates[0], candidates[1]));
}

TrackingEnvironment::TrackingEnvironment(const std::string& library, const std::string& prefix) {
  const auto set = [this](const std::string& name, const std::string& value) {
    const char* old = std::getenv(name.c_str());
    saved_.push_back({name, old != nullptr, old ? old : ""});
    setenv(name.c_str(), value.c_str(), 1);
  };
  const char* preload = std::getenv("LD_PRELOAD");
  set("LD_PRELOAD", preload && *preload ? fmt::format("{}:{}", library, preload) : library);
  set("MEMSCOPE_TRACK_OUTPUT", prefix);
}

TrackingEnvironment::~TrackingEnvironment() {
  for (const Saved& saved : saved_) {
    if (saved.was_set) {
      setenv(saved.name.c_str(), saved.value.c_str(), 1);
    } else {
      unsetenv(saved.name.c_str());
    }
  }
}

Result<TracedProcess> analyse_trace(const std::string& path, bool folded) {
  TracedProcess traced;
  traced.file = path;
  std::error_code size_error;
  traced.file_bytes = static_cast<uint64_t>(fs::file_size(path, size_error));
  if (size_error) traced.file_bytes = 0;
  std::optional<Error> failure;
  traced.report = alloc::analyze_sites([&](alloc::TraceVisitor& visitor) {
    Result<alloc::TraceEnd> read = alloc::read_trace_file(path, visitor);
    if (!read && !failure) failure = read.error();
  });
  if (failure) return *failure;

  // Symbols come from the files on this machine only: libdw would otherwise ask debuginfod
  // servers (DEBUGINFOD_URLS) for every module without local debug information.
  unsetenv("DEBUGINFOD_URLS");
  alloc::Symbolizer symbolizer(traced.report.modules);
  const std::vector<alloc::Site>& sites = traced.report.sites;
  traced.sites.reserve(sites.size());
  traced.detailed.assign(sites.size(), false);
  {
    std::vector<size_t> order(sites.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    const auto weight = [&](size_t i) {
      return std::max(sites[i].leaked_bytes, sites[i].growing ? sites[i].max_live_bytes : 0);
    };
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return weight(a) > weight(b); });
    order.resize(std::min(order.size(), kMaxJsonSitesPerTrace));
    std::sort(order.begin(), order.end());  // back in the report's order
    for (size_t i : order) traced.detailed[i] = true;
    traced.json_sites = std::move(order);
  }
  for (const alloc::Site& site : sites) {
    alloc::ResolvedSite resolved;
    resolved.site = site;
    const std::vector<uint64_t> ips = traced.report.stacks.frames(site.stack);
    // Named after the innermost frame outside memscope and the allocator (the innermost frame
    // when every one is an allocator's); only the frames up to it are copied unless wanted.
    const alloc::Frame* naming = nullptr;
    for (uint64_t ip : ips) {
      const alloc::Frame& frame = symbolizer.resolve(ip);
      if (!alloc::is_allocator_frame(frame)) {
        naming = &frame;
        break;
      }
    }
    if (naming == nullptr && !ips.empty()) naming = &symbolizer.resolve(ips.front());
    if (naming != nullptr) {
      resolved.function = naming->function.empty() ? "??" : naming->function;
      resolved.location = alloc::frame_location(*naming);
    } else {
      resolved.function = "??";
    }
    if (traced.detailed[traced.sites.size()]) {
      resolved.frames.reserve(ips.size());
      for (uint64_t ip : ips) resolved.frames.push_back(symbolizer.resolve(ip));
    }
    traced.sites.push_back(std::move(resolved));
  }
  if (folded) {
    traced.folded = alloc::folded_stacks(
        traced.report, [&](uint64_t ip) -> const alloc::Frame& { return symbolizer.resolve(ip); });
  }
  return traced;
}

void add_tracking_json(nlohmann::json& document, const std::vector<TracedProcess>& traces) {
  document["traces"] = nlohmann::json::array();
  nlohmann::json sites = nlohmann::json::array();
  for (const TracedProcess& traced : traces) {
    std::vector<alloc::ResolvedSite> kept;
    kept.reserve(traced.json_sites.size());
    for (size_t i : traced.json_sites) kept.push_back(traced.sites[i]);
    nlohmann::json trace = alloc::trace_json(traced.report, kept);
    nlohmann::json trace_sites = trace.contains("sites") ? trace["sites"] : nlohmann::json::array();
    trace.erase("sites");
    trace["trace_file"] = traced.file;
    trace["trace_file_bytes"] = traced.file_bytes;
    trace["sites_total"] = traced.sites.size();
    trace["sites_omitted"] = traced.sites.size() - kept.size();
    for (nlohmann::json& site : trace_sites) {
      site["pid"] = traced.report.process.pid;
      site["trace_file"] = traced.file;
      sites.push_back(std::move(site));
    }
    document["traces"].push_back(std::move(trace));
  }
  std::stable_sort(sites.begin(), sites.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.at("leaked_bytes").get<uint64_t>() > b.at("leaked_bytes").get<uint64_t>();
  });
  document["sites"] = std::move(sites);
}

std::string tracking_text(const std::vector<TracedProcess>& traces, size_t top) {
  std::string out;
  for (const TracedProcess& traced : traces) {
    out += fmt::format("\nallocation trace {} ({}, {} events)\n", traced.file,
                       format_bytes(traced.file_bytes), traced.report.events);
    out += alloc::sites_table(traced.report, traced.sites, top);
  }
  return out;
}

Status write_flamegraphs(const std::string& prefix, const std::vector<TracedProcess>& traces) {
  for (const auto& [at, suffix] : {std::pair{alloc::FoldedAt::end, ".end.folded"},
                                   std::pair{alloc::FoldedAt::peak, ".peak.folded"}}) {
    std::string text;
    for (const TracedProcess& traced : traces) {
      std::string root = fmt::format("{} ({})", alloc::file_name_of(traced.report.process.exe),
                                     traced.report.process.pid);
      for (char& c : root) {
        if (c == ';' || c == '\n') c = '_';
      }
      std::istringstream lines(at == alloc::FoldedAt::end ? traced.folded.end : traced.folded.peak);
      for (std::string line; std::getline(lines, line);) {
        if (!line.empty()) text += fmt::format("{};{}\n", root, line);
      }
    }
    if (Status written = write_text_file(prefix + suffix, text); !written) return written;
  }
  return {};
}

}  // namespace memscope::cli
