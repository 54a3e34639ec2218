#include "analyze/alloc_sites.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <limits>
#include <map>
#include <unordered_map>
#include <utility>

namespace memscope::alloc {

void StackTable::add(uint32_t id, const StackNode& node) {
  // The reader defines ids 1, 2, 3, ... in order; anything else would make the table grow
  // with a number from the file, so it is dropped (frames() then stops at it).
  if (id == 0 || id > nodes_.size() + 1) return;
  if (id == nodes_.size() + 1) {
    nodes_.push_back(node);
  } else {
    nodes_[id - 1] = node;
  }
}

std::vector<uint64_t> StackTable::frames(uint32_t id) const {
  std::vector<uint64_t> ips;
  while (id != 0 && id <= nodes_.size()) {
    const StackNode& node = nodes_[id - 1];
    ips.push_back(node.ip);
    if (node.parent >= id) break;  // parents come first; anything else would loop
    id = node.parent;
  }
  return ips;
}

namespace {

constexpr double kNsPerSecond = 1e9;

double seconds_of(uint64_t ns) { return static_cast<double>(ns) / kNsPerSecond; }

uint64_t end_of(uint64_t address, uint64_t length) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  return length > max - address ? max : address + length;
}

bool is_range_space(Space space) { return space == Space::mmap || space == Space::cuda_mapping; }

// Live figures of one site, kept by both passes.
struct SiteLive {
  uint64_t bytes = 0;
  uint64_t count = 0;
  uint64_t max_bytes = 0;
};

// The live allocations of every space and the live bytes of every site (by index): the state
// both passes rebuild event by event. Heap-like spaces are keyed by address; mmap and
// cuda-mapping are address ranges that unmaps may cut anywhere.
class LiveMemory {
 public:
  explicit LiveMemory(std::vector<SiteLive>& sites) : sites_(sites) {}

  void allocate(Space space, uint64_t address, uint64_t size, uint32_t site) {
    if (is_range_space(space)) {
      const uint64_t end = end_of(address, size);
      // A new mapping over an old one replaces it (MAP_FIXED).
      cut(space, address, end);
      if (end > address) {
        ranges_[index(space)].emplace(address, Range{end, site});
        add(space, site, end - address, 1);
      }
      return;
    }
    auto& blocks = blocks_[index(space)];
    // Seen allocated twice without a free in between (a free the trace missed): the newer wins.
    if (auto it = blocks.find(address); it != blocks.end()) {
      remove(space, it->second.site, it->second.size, 1);
      blocks.erase(it);
    }
    blocks.emplace(address, Block{size, site});
    add(space, site, size, 1);
  }

  // False when nothing was live at `address`.
  bool release(Space space, uint64_t address) {
    if (is_range_space(space)) {
      // A FREE of a range (not what the tracker writes for mmap): the range starting there.
      auto& ranges = ranges_[index(space)];
      const auto it = ranges.find(address);
      if (it == ranges.end()) return false;
      cut(space, address, it->second.end);
      return true;
    }
    auto& blocks = blocks_[index(space)];
    const auto it = blocks.find(address);
    if (it == blocks.end()) return false;
    remove(space, it->second.site, it->second.size, 1);
    blocks.erase(it);
    return true;
  }

  // [address, address + length) released: in range spaces whatever part of any range it covers;
  // elsewhere (not what the tracker writes) the block at `address`.
  bool unmap(Space space, uint64_t address, uint64_t length) {
    if (!is_range_space(space)) return release(space, address);
    return cut(space, address, end_of(address, length));
  }

  uint64_t space_bytes(Space space) const { return space_bytes_[index(space)]; }
  uint64_t host_bytes() const { return space_bytes(Space::heap) + space_bytes(Space::mmap); }
  uint64_t gpu_bytes() const {
    return space_bytes(Space::cuda) + space_bytes(Space::cuda_driver) +
           space_bytes(Space::cuda_physical);
  }

 private:
  struct Block {
    uint64_t size = 0;
    uint32_t site = 0;
  };
  struct Range {
    uint64_t end = 0;
    uint32_t site = 0;
  };

  static size_t index(Space space) { return static_cast<size_t>(space); }

  void add(Space space, uint32_t site, uint64_t bytes, uint64_t count) {
    SiteLive& live = sites_[site];
    live.bytes += bytes;
    live.count += count;
    live.max_bytes = std::max(live.max_bytes, live.bytes);
    space_bytes_[index(space)] += bytes;
  }

  void remove(Space space, uint32_t site, uint64_t bytes, uint64_t count) {
    SiteLive& live = sites_[site];
    live.bytes -= std::min(live.bytes, bytes);
    live.count -= std::min(live.count, count);
    uint64_t& total = space_bytes_[index(space)];
    total -= std::min(total, bytes);
  }

  // Removes [begin, end) from every range it overlaps: a range may lose its middle (two pieces
  // stay), either end, or all of it. Each site loses exactly the bytes cut from its ranges.
  bool cut(Space space, uint64_t begin, uint64_t end) {
    if (end <= begin) return false;
    auto& ranges = ranges_[index(space)];
    auto it = ranges.upper_bound(begin);
    if (it != ranges.begin()) {
      const auto before = std::prev(it);
      if (before->second.end > begin) it = before;
    }
    bool any = false;
    while (it != ranges.end() && it->first < end) {
      const uint64_t start = it->first;
      const Range range = it->second;
      const uint64_t cut_begin = std::max(start, begin);
      const uint64_t cut_end = std::min(range.end, end);
      it = ranges.erase(it);
      uint64_t pieces = 0;
      if (start < cut_begin) {
        ranges.emplace(start, Range{cut_begin, range.site});
        ++pieces;
      }
      if (cut_end < range.end) {
        // Starts at or after `end`: the loop stops before it.
        it = ranges.emplace_hint(it, cut_end, Range{range.end, range.site});
        ++pieces;
      }
      remove(space, range.site, cut_end - cut_begin, 0);
      if (pieces == 0) remove(space, range.site, 0, 1);
      if (pieces == 2) add(space, range.site, 0, 1);
      any = true;
    }
    return any;
  }

  std::vector<SiteLive>& sites_;
  std::array<std::unordered_map<uint64_t, Block>, kSpaceCount> blocks_;
  std::array<std::map<uint64_t, Range>, kSpaceCount> ranges_;
  std::array<uint64_t, kSpaceCount> space_bytes_{};
};

// Sites by (stack, space), numbered in order of their first allocation.
class SiteIndex {
 public:
  // The site's index, created on first use when `create`; npos when absent.
  static constexpr uint32_t npos = std::numeric_limits<uint32_t>::max();
  uint32_t find(uint32_t stack, Space space, bool create) {
    const uint64_t key = (static_cast<uint64_t>(stack) << 8) | static_cast<uint64_t>(space);
    const auto it = ids_.find(key);
    if (it != ids_.end()) return it->second;
    if (!create) return npos;
    const auto id = static_cast<uint32_t>(keys_.size());
    ids_.emplace(key, id);
    keys_.emplace_back(stack, space);
    return id;
  }
  size_t size() const { return keys_.size(); }
  const std::pair<uint32_t, Space>& key(size_t id) const { return keys_[id]; }

 private:
  std::unordered_map<uint64_t, uint32_t> ids_;
  std::vector<std::pair<uint32_t, Space>> keys_;
};

// Applies one event to `memory`; sites come from `site_of(stack, space)` (npos: not tracked).
// Returns false for a free/realloc of an address that was not live.
template <typename SiteOf>
bool apply(LiveMemory& memory, const Event& event, SiteOf&& site_of) {
  switch (event.kind) {
    case EventKind::alloc: {
      const uint32_t site = site_of(event.stack, event.space);
      if (site != SiteIndex::npos) memory.allocate(event.space, event.address, event.size, site);
      return true;
    }
    case EventKind::free:
      return memory.release(event.space, event.address);
    case EventKind::realloc: {
      const bool known = event.old_address == 0 || memory.release(Space::heap, event.old_address);
      if (event.address == 0) return known;  // realloc(p, 0) that freed p and returned NULL
      const uint32_t site = site_of(event.stack, Space::heap);
      if (site != SiteIndex::npos) memory.allocate(Space::heap, event.address, event.size, site);
      return known;
    }
    case EventKind::unmap:
      memory.unmap(event.space, event.address, event.size);
      return true;
    case EventKind::remap: {
      // mremap: the old range goes, the new one belongs to the REMAP's stack — when the old
      // range was an allocation at all (a file mapping grown with mremap is not).
      if (!memory.unmap(Space::mmap, event.old_address, event.old_size)) return true;
      const uint32_t site = site_of(event.stack, Space::mmap);
      if (site != SiteIndex::npos) memory.allocate(Space::mmap, event.address, event.size, site);
      return true;
    }
  }
  return true;
}

// Pass 1: the run as a whole.
class RunVisitor : public TraceVisitor {
 public:
  RunVisitor(SiteReport& report, SiteIndex& index, std::vector<Site>& sites)
      : report_(report), index_(index), sites_(sites), memory_(live_) {}

  void on_process(const ProcessInfo& process) override { report_.process = process; }
  void on_module(const Module& module) override { report_.modules.push_back(module); }
  void on_stack(uint32_t id, const StackNode& node) override { report_.stacks.add(id, node); }
  void on_end(const TraceEnd& end) override { report_.end = end; }

  void on_event(const Event& event) override {
    ++report_.events;
    last_ns_ = std::max(last_ns_, event.time_ns);
    const auto site_of = [this, &event](uint32_t stack, Space space) {
      const uint32_t id = index_.find(stack, space, true);
      if (id == sites_.size()) {
        sites_.emplace_back();
        sites_.back().stack = stack;
        sites_.back().space = space;
        sites_.back().first_seen_seconds = seconds_of(event.time_ns);
        live_.emplace_back();
      }
      Site& site = sites_[id];
      site.allocated_bytes += event.size;
      ++site.allocated_count;
      site.last_seen_seconds = seconds_of(event.time_ns);
      return id;
    };
    if (!apply(memory_, event, site_of)) ++report_.unknown_frees;
    const uint64_t total = memory_.host_bytes() + memory_.gpu_bytes();
    if (total > peak_total_) {
      peak_total_ = total;
      peak_event_ = report_.events;
      report_.peak_seconds = seconds_of(event.time_ns);
      report_.peak_host_bytes = memory_.host_bytes();
      report_.peak_gpu_bytes = memory_.gpu_bytes();
    }
  }

  // Copies the end state into the sites and the report.
  void finish() {
    for (size_t i = 0; i < sites_.size(); ++i) {
      sites_[i].leaked_bytes = live_[i].bytes;
      sites_[i].leaked_count = live_[i].count;
      sites_[i].max_live_bytes = live_[i].max_bytes;
    }
    report_.end_host_bytes = memory_.host_bytes();
    report_.end_gpu_bytes = memory_.gpu_bytes();
    report_.end.events = report_.events;
    report_.end.last_time_ns = std::max(report_.end.last_time_ns, last_ns_);
  }

  uint64_t peak_event() const { return peak_event_; }

 private:
  SiteReport& report_;
  SiteIndex& index_;
  std::vector<Site>& sites_;
  std::vector<SiteLive> live_;
  LiveMemory memory_;
  uint64_t last_ns_ = 0;
  uint64_t peak_total_ = 0;
  uint64_t peak_event_ = 0;  // 1-based index of the event that reached the peak; 0: none
};

// Pass 2: the run again, knowing its length and when it peaked: each site's live bytes at the
// peak and at the growth sample times.
class SampleVisitor : public TraceVisitor {
 public:
  SampleVisitor(SiteIndex& index, std::vector<Site>& sites, uint64_t peak_event,
                std::vector<uint64_t> sample_ns)
      : index_(index),
        sites_(sites),
        live_(sites.size()),
        memory_(live_),
        peak_event_(peak_event),
        sample_ns_(std::move(sample_ns)) {
    for (Site& site : sites_) site.live_bytes_over_time.assign(sample_ns_.size(), 0);
  }

  void on_event(const Event& event) override {
    // A sample at time t is the state after every event up to t.
    while (next_sample_ < sample_ns_.size() && event.time_ns > sample_ns_[next_sample_]) {
      take_sample();
    }
    ++events_;
    apply(memory_, event,
          [this](uint32_t stack, Space space) { return index_.find(stack, space, false); });
    if (events_ == peak_event_) {
      for (size_t i = 0; i < sites_.size(); ++i) sites_[i].peak_bytes = live_[i].bytes;
    }
  }

  void finish() {
    while (next_sample_ < sample_ns_.size()) take_sample();
  }

 private:
  void take_sample() {
    for (size_t i = 0; i < sites_.size(); ++i) {
      sites_[i].live_bytes_over_time[next_sample_] = live_[i].bytes;
    }
    ++next_sample_;
  }

  SiteIndex& index_;
  std::vector<Site>& sites_;
  std::vector<SiteLive> live_;
  LiveMemory memory_;
  uint64_t peak_event_ = 0;
  uint64_t events_ = 0;
  std::vector<uint64_t> sample_ns_;
  size_t next_sample_ = 0;
};

// Growing: the site's live bytes rise through the run, not only at its end, and still rise in
// its second half. With samples s[0..n-1] at (i+1)/n of the run, let floor(i) = min(s[i..n-1]):
// what the site keeps from sample i on (the low points of a sawtooth, whichever phase the
// samples happen to catch). With a, b, c the floors at 25 %, 50 % and 75 % of the run:
// - n >= 4, and the site holds memory at >= max(4, n/4) samples (not a final burst);
// - c - a > a / 10: what it keeps rose clearly over the run (a sawtooth that returns to its
//   base does not qualify, however high its teeth);
// - c - b >= (c - a) / 4 and c > b: the second half adds at least a quarter of that rise (a ramp
//   that stays flat for the second half is a warm-up, not growth).
bool is_growing(const std::vector<uint64_t>& samples) {
  const size_t n = samples.size();
  if (n < 4) return false;
  const size_t live_points = static_cast<size_t>(
      std::count_if(samples.begin(), samples.end(), [](uint64_t bytes) { return bytes > 0; }));
  if (live_points < std::max<size_t>(4, (n + 3) / 4)) return false;
  std::vector<uint64_t> floor(samples);
  for (size_t i = n - 1; i-- > 0;) floor[i] = std::min(floor[i], floor[i + 1]);
  // The sample at fraction k/4 of the run: index ceil(n k / 4) - 1.
  const auto at_quarter = [&](size_t k) { return floor[(n * k + 3) / 4 - 1]; };
  const uint64_t a = at_quarter(1);
  const uint64_t b = at_quarter(2);
  const uint64_t c = at_quarter(3);
  if (c <= a || c - a <= a / 10) return false;
  return c > b && (c - b) * 4 >= c - a;
}

// The rule above over the site's own lifetime: from its first sample holding memory (a site
// that starts late in the run, after a long import, and grows from then on is growing), and —
// memory a program gives back as it exits (a Python list of leaked tensors freed at interpreter
// shutdown) hides the growth before it — up to its peak when it peaks in the last quarter of
// that lifetime and ends below it.
bool grows_before_any_final_release(const std::vector<uint64_t>& all_samples) {
  const auto first = std::find_if(all_samples.begin(), all_samples.end(),
                                  [](uint64_t bytes) { return bytes > 0; });
  const std::vector<uint64_t> samples(first, all_samples.end());
  const size_t n = samples.size();
  if (n < 4) return false;
  const size_t peak = static_cast<size_t>(
      std::distance(samples.begin(), std::max_element(samples.begin(), samples.end())));
  if (samples.back() < samples[peak] && (peak + 1) * 4 >= n * 3) {
    return is_growing(std::vector<uint64_t>(samples.begin(),
                                            samples.begin() + static_cast<std::ptrdiff_t>(peak) + 1));
  }
  return is_growing(samples);
}

}  // namespace

SiteReport analyze_sites(const std::function<void(TraceVisitor&)>& replay,
                         const SiteParams& params) {
  SiteReport report;
  SiteIndex index;
  std::vector<Site> sites;
  uint64_t peak_event = 0;
  {
    RunVisitor run(report, index, sites);
    replay(run);
    run.finish();
    peak_event = run.peak_event();
  }
  const uint64_t run_ns = report.end.last_time_ns;
  report.duration_seconds = seconds_of(run_ns);

  std::vector<uint64_t> sample_ns;
  for (size_t i = 0; i < params.growth_points; ++i) {
    // run_ns * (i + 1) / n without overflow or rounding: an event at a sample's time is in it.
    const uint64_t n = params.growth_points;
    sample_ns.push_back(run_ns / n * (i + 1) + run_ns % n * (i + 1) / n);
    report.growth_times_seconds.push_back(seconds_of(sample_ns.back()));
  }
  if (!sites.empty()) {
    SampleVisitor samples(index, sites, peak_event, std::move(sample_ns));
    replay(samples);
    samples.finish();
  }
  for (Site& site : sites) site.growing = grows_before_any_final_release(site.live_bytes_over_time);

  std::sort(sites.begin(), sites.end(), [](const Site& a, const Site& b) {
    if (a.leaked_bytes != b.leaked_bytes) return a.leaked_bytes > b.leaked_bytes;
    if (a.max_live_bytes != b.max_live_bytes) return a.max_live_bytes > b.max_live_bytes;
    if (a.stack != b.stack) return a.stack < b.stack;
    return a.space < b.space;
  });
  report.sites = std::move(sites);
  return report;
}

bool is_allocator_function(std::string_view function) {
  static constexpr std::string_view kExact[] = {
      "malloc", "calloc", "realloc", "free", "reallocarray", "posix_memalign", "aligned_alloc",
      "memalign", "valloc", "pvalloc", "PyMem_Malloc", "PyMem_Calloc", "PyMem_Realloc",
      "PyMem_RawMalloc", "PyMem_RawCalloc", "PyMem_RawRealloc", "_PyMem_RawMalloc",
      "_PyMem_RawCalloc", "_PyMem_RawRealloc", "PyObject_Malloc", "PyObject_Calloc",
      "PyObject_Realloc", "_PyObject_Malloc", "_PyObject_Calloc", "_PyObject_Realloc",
      "pymalloc_alloc", "_PyObject_ArenaMmap", "new_arena", "allocate_from_new_pool",
      // glibc's own names for the malloc family.
      "__libc_malloc", "__libc_calloc", "__libc_realloc"};
  if (std::ranges::find(kExact, function) != std::end(kExact)) return true;
  // operator new and new[], every overload (nothrow, align_val_t, ...).
  for (std::string_view op :
       {std::string_view("operator new"), std::string_view("operator new[]")}) {
    if (function == op ||
        (function.starts_with(op) && function.substr(op.size()).starts_with("("))) {
      return true;
    }
  }
  const bool allocate = function.find("::allocate(") != std::string_view::npos;
  return allocate && (function.starts_with("__gnu_cxx::new_allocator<") ||
                      function.starts_with("std::__new_allocator<") ||
                      function.starts_with("std::allocator_traits<") ||
                      function.starts_with("std::allocator<"));
}

namespace {

bool in_tracker(const Frame& frame) {
  return file_name_of(frame.module) == "libmemscope_track.so";
}

}  // namespace

bool is_allocator_frame(const Frame& frame) {
  // An interpreter frame without a symbol (a stripped python3's static functions) is taken for
  // its allocator (pymalloc's arenas and pools) rather than for the caller.
  return in_tracker(frame) || is_allocator_function(frame.function) ||
         (frame.python_interpreter && frame.function.empty());
}

int naming_frame(const std::vector<Frame>& frames) {
  if (frames.empty()) return -1;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (!is_allocator_frame(frames[i])) return static_cast<int>(i);
  }
  return 0;
}

}  // namespace memscope::alloc
