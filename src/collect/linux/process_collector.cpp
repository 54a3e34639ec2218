#include "collect/linux/process_collector.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <limits>
#include <string>
#include <system_error>
#include <unordered_map>

#include "collect/linux/fd_budget.hpp"
#include "collect/linux/pid_files.hpp"
#include "collect/linux/proc_listing.hpp"

namespace memscope::procfs {
namespace {

// Read sizes: a stat line is < 1 KiB even with a 64-byte comm; statm ~40 bytes; smaps_rollup
// ~1.2 KiB. cmdline and environ are read once per process and capped.
constexpr size_t kStatBytes = 4096;
constexpr size_t kStatmBytes = 256;
constexpr size_t kSmapsBytes = 8192;
constexpr size_t kCmdlineBytes = 64 * 1024;
constexpr size_t kEnvironBytes = 1024 * 1024;

bool vanished(int error) { return error == ESRCH || error == ENOENT; }
bool denied(int error) { return error == EACCES || error == EPERM; }
bool out_of_descriptors(int error) { return error == EMFILE || error == ENFILE; }
bool is_zombie(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

// Where in [0.1, 1) of smaps_max_age_seconds a new process's first age-based refresh falls:
// a multiplicative hash of the pid, so processes born together refresh apart.
double stagger_fraction(int pid) {
  const uint32_t hash = static_cast<uint32_t>(pid) * 2654435761u;
  return 0.1 + 0.9 * static_cast<double>(hash >> 22) / 1024.0;
}

struct Tracked {
  uint64_t inode = 0;
  uint64_t generation = 0;  // the last listing that showed it
  uint64_t stat_generation = 0;  // the listing at which stat was last read
  uint64_t start_time = 0;
  int ppid = 0;
  char state = '?';
  bool kernel_thread = false;
  bool member = false;        // sampled in the current collect
  bool in_tree = false;       // scratch for tree selection
  bool details_read = false;  // cmdline and environ
  bool smaps_known = false;   // pss/uss/swap hold a successful read
  bool smaps_denied = false;  // EACCES/EPERM: not tried again
  double stat_due = 0;        // when stat is to be read again
  double smaps_time = 0;
  double smaps_due = 0;
  uint64_t rss = 0;
  uint64_t rss_at_smaps = 0;
  SmapsRollup smaps;
  std::string comm;
  std::string cmdline;
  RankInfo ranks;
  int stat_fd = -1;
  int statm_fd = -1;
  int smaps_fd = -1;
};

enum class Outcome { kSampled, kSkipped, kVanished };

}  // namespace

class ProcessCollector::Impl {
 public:
  Impl(Roots roots, Policy policy, FileAccess* files)
      : roots_(std::move(roots)),
        policy_(policy),
        files_(files != nullptr ? *files : system_file_access()),
        lister_(roots_.proc) {
    const long page = sysconf(_SC_PAGESIZE);
    page_size_ = page > 0 ? static_cast<uint64_t>(page) : 4096;
    if (policy_.keep_fds) {
      const size_t limit = raise_open_file_limit();
      budget_ = limit > kReservedDescriptors ? limit - kReservedDescriptors : 0;
    }
  }

  ~Impl() {
    for (auto& [pid, tracked] : table_) close_descriptors(tracked);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void collect_into(double now, int root_pid, std::vector<ProcessSample>& out) {
    ++generation_;
    if (const int error = lister_.list(entries_); error != 0) {
      listing_error_ = "cannot list " + roots_.proc + ": " + std::generic_category().message(error);
      out.clear();
      return;
    }
    listing_error_.clear();
    for (const PidEntry& entry : entries_) update_identity(entry, now);
    for (auto it = table_.begin(); it != table_.end();) {
      if (it->second.generation != generation_) {
        close_descriptors(it->second);
        it = table_.erase(it);
      } else {
        ++it;
      }
    }
    select_members(root_pid, now);

    size_t count = 0;
    for (const PidEntry& entry : entries_) {
      const auto it = table_.find(entry.pid);
      if (it == table_.end() || !it->second.member) continue;
      const Outcome outcome = sample(entry.pid, it->second, now);
      if (outcome == Outcome::kVanished) {
        close_descriptors(it->second);
        table_.erase(it);
        continue;
      }
      if (outcome == Outcome::kSkipped) continue;
      if (count == out.size()) out.emplace_back();
      fill(out[count++], entry.pid, it->second, now);
    }
    out.resize(count);
  }

  const std::string& listing_error() const { return listing_error_; }
  Stats stats() const { return stats_; }
  size_t tracked() const { return table_.size(); }
  size_t kept() const { return kept_; }

 private:
  // --- identity: stat, pid reuse, vanishing -------------------------------------------------

  void update_identity(const PidEntry& entry, double now) {
    auto it = table_.find(entry.pid);
    if (it == table_.end()) {
      PidStat stat;
      if (read_stat(entry.pid, stat) != 0) return;  // gone already, or unreadable: not listed
      Tracked& tracked = table_[entry.pid];
      tracked.inode = entry.inode;
      tracked.generation = generation_;
      adopt_stat(entry.pid, tracked, stat, now, true);
      return;
    }
    Tracked& tracked = it->second;
    tracked.generation = generation_;
    const bool new_inode = tracked.inode != entry.inode;
    tracked.inode = entry.inode;
    if (tracked.kernel_thread && !new_inode) return;
    if (new_inode || (tracked.member && now >= tracked.stat_due)) {
      PidStat stat;
      // A new inode may be a new process: not through the old one's descriptor.
      const int error = read_stat(entry.pid, stat, new_inode ? nullptr : &tracked.stat_fd);
      if (error != 0) {
        if (vanished(error)) tracked.generation = 0;  // swept below
        return;
      }
      const bool reused = stat.start_time_ticks != tracked.start_time;
      if (reused) {
        // The pid was reused: a different process.
        close_descriptors(tracked);
        tracked = Tracked{};
        tracked.inode = entry.inode;
        tracked.generation = generation_;
      } else if (stat.comm != tracked.comm) {
        tracked.details_read = false;  // exec: cmdline and environ changed with it
      }
      adopt_stat(entry.pid, tracked, stat, now, reused);
    }
  }

  // first: the process was just found. Its first refresh comes after a pid-dependent part of
  // the period, so processes found together do not all refresh in one sample.
  void adopt_stat(int pid, Tracked& tracked, PidStat& stat, double now, bool first) const {
    tracked.start_time = stat.start_time_ticks;
    tracked.stat_generation = generation_;
    tracked.ppid = stat.ppid;
    tracked.state = stat.state;
    tracked.kernel_thread = stat.is_kernel_thread();
    tracked.comm = std::move(stat.comm);
    tracked.stat_due = now + policy_.stat_refresh_seconds * (first ? stagger_fraction(pid) : 1.0);
  }

  // Through a kept descriptor when kept_fd is given, else open/read/close.
  int read_stat(int pid, PidStat& stat, int* kept_fd = nullptr) {
    ++stats_.stat_reads;
    const int error = kept_fd != nullptr ? read_kept(pid, "stat", *kept_fd, buffer_, kStatBytes)
                                         : read_once(pid, "stat", buffer_, kStatBytes);
    if (error != 0) return error;
    auto parsed = parse_pid_stat(buffer_);
    if (!parsed || parsed->pid != pid) return EINVAL;
    stat = std::move(*parsed);
    return 0;
  }

  // --- which processes are sampled ----------------------------------------------------------

  void select_members(int root_pid, double now) {
    if (root_pid == 0) {
      for (auto& [pid, tracked] : table_) set_member(tracked, !tracked.kernel_thread);
      return;
    }
    edges_.clear();
    for (auto& [pid, tracked] : table_) {
      tracked.in_tree = false;
      if (!tracked.kernel_thread) edges_.push_back({tracked.ppid, pid, &tracked});
    }
    std::sort(edges_.begin(), edges_.end(), [](const Edge& a, const Edge& b) {
      return a.ppid != b.ppid ? a.ppid < b.ppid : a.pid < b.pid;
    });
    queue_.clear();
    queue_.push_back(root_pid);
    if (const auto root = table_.find(root_pid); root != table_.end()) {
      root->second.in_tree = !root->second.kernel_thread;
    }
    for (size_t next = 0; next < queue_.size(); ++next) {
      const int parent = queue_[next];
      auto child = std::lower_bound(edges_.begin(), edges_.end(), parent,
                                    [](const Edge& edge, int ppid) { return edge.ppid < ppid; });
      for (; child != edges_.end() && child->ppid == parent; ++child) {
        if (child->tracked->in_tree) continue;  // a ppid cycle, in hostile fixtures only
        if (!child->tracked->member && !still_child_of(parent, child->pid, *child->tracked, now)) {
          continue;
        }
        child->tracked->in_tree = true;
        queue_.push_back(child->pid);
      }
    }
    for (auto& [pid, tracked] : table_) set_member(tracked, tracked.in_tree);
  }

  // A process outside the tree had its parent read when it was found. Its parent may have died
  // since (the process was re-parented) and the parent's pid been reused by the tree's root or
  // a process in it: before joining the tree, its parent is read again.
  bool still_child_of(int parent, int pid, Tracked& tracked, double now) {
    if (tracked.stat_generation == generation_) return true;  // read in this listing
    PidStat stat;
    if (read_stat(pid, stat) != 0) return false;  // gone: swept at the next listing
    if (stat.start_time_ticks != tracked.start_time) {
      close_descriptors(tracked);
      const uint64_t inode = tracked.inode;
      tracked = Tracked{};
      tracked.inode = inode;
      tracked.generation = generation_;
    }
    adopt_stat(pid, tracked, stat, now, false);
    return tracked.ppid == parent;
  }

  void set_member(Tracked& tracked, bool member) {
    if (tracked.member && !member) close_descriptors(tracked);
    tracked.member = member;
  }

  // --- memory -------------------------------------------------------------------------------

  Outcome sample(int pid, Tracked& tracked, double now) {
    if (!tracked.details_read) {
      if (read_details(pid, tracked) == Outcome::kVanished) return Outcome::kVanished;
    }
    if (is_zombie(tracked.state)) return Outcome::kSampled;  // no address space left

    ++stats_.statm_reads;
    const int error = read_kept(pid, "statm", tracked.statm_fd, buffer_, kStatmBytes);
    if (error != 0) return vanished(error) ? Outcome::kVanished : Outcome::kSkipped;
    const auto pages = parse_statm_resident_pages(buffer_);
    if (!pages) return Outcome::kSkipped;
    tracked.rss = *pages > std::numeric_limits<uint64_t>::max() / page_size_
                      ? std::numeric_limits<uint64_t>::max()
                      : *pages * page_size_;

    if (tracked.smaps_denied) return Outcome::kSampled;
    if (tracked.smaps_known && now < tracked.smaps_due && !rss_moved(tracked)) {
      return Outcome::kSampled;
    }
    return read_smaps(pid, tracked, now);
  }

  bool rss_moved(const Tracked& tracked) const {
    const uint64_t before = tracked.rss_at_smaps;
    const uint64_t change = tracked.rss > before ? tracked.rss - before : before - tracked.rss;
    const double relative = policy_.rss_change_fraction * static_cast<double>(before);
    return static_cast<double>(change) >
           std::max(static_cast<double>(policy_.rss_change_min_bytes), relative);
  }

  Outcome read_smaps(int pid, Tracked& tracked, double now) {
    ++stats_.smaps_reads;
    const bool had_descriptor = tracked.smaps_fd >= 0;
    int error = read_kept(pid, "smaps_rollup", tracked.smaps_fd, buffer_, kSmapsBytes);
    if (error == ESRCH && had_descriptor) {
      // A kept descriptor holds the address space it was opened on; after exec that one is
      // gone. Open again; and refresh what exec changed (comm, cmdline, environ) next sample.
      ++stats_.smaps_reads;
      error = read_kept(pid, "smaps_rollup", tracked.smaps_fd, buffer_, kSmapsBytes);
      if (error == 0) {
        tracked.stat_due = -std::numeric_limits<double>::infinity();
        tracked.details_read = false;
      }
    }
    if (error == 0) {
      if (const auto rollup = parse_smaps_rollup(buffer_)) {
        tracked.smaps_due = now + policy_.smaps_max_age_seconds *
                                      (tracked.smaps_known ? 1.0 : stagger_fraction(pid));
        tracked.smaps = *rollup;
        tracked.smaps_known = true;
        tracked.smaps_time = now;
        tracked.rss_at_smaps = tracked.rss;
        return Outcome::kSampled;
      }
    } else if (denied(error)) {
      tracked.smaps_denied = true;
      release(tracked.smaps_fd);
      return Outcome::kSampled;
    } else if (vanished(error)) {
      // Exited since statm, or became a zombie (no address space to roll up).
      PidStat stat;
      if (read_stat(pid, stat) != 0 || stat.start_time_ticks != tracked.start_time) {
        return Outcome::kVanished;
      }
      tracked.state = stat.state;
      if (is_zombie(stat.state)) return Outcome::kSampled;
    }
    // Malformed, or failing for another reason: keep what we had and try again later.
    tracked.smaps_due = now + policy_.smaps_max_age_seconds;
    return Outcome::kSampled;
  }

  Outcome read_details(int pid, Tracked& tracked) {
    ++stats_.cmdline_reads;
    int error = read_once(pid, "cmdline", buffer_, kCmdlineBytes);
    if (vanished(error)) return Outcome::kVanished;
    parse_cmdline_into(error == 0 ? std::string_view(buffer_) : std::string_view(),
                       tracked.cmdline);
    tracked.ranks = {};
    if (policy_.read_environ) {
      ++stats_.environ_reads;
      error = read_once(pid, "environ", buffer_, kEnvironBytes);
      if (vanished(error)) return Outcome::kVanished;
      if (error == 0) tracked.ranks = parse_environ_ranks(buffer_);  // EACCES: ranks unknown
    }
    tracked.details_read = true;
    return Outcome::kSampled;
  }

  void fill(ProcessSample& out, int pid, const Tracked& tracked, double now) const {
    out.pid = pid;
    out.ppid = tracked.ppid;
    out.comm.assign(tracked.comm);
    out.state = tracked.state;
    out.start_time_ticks = tracked.start_time;
    out.cmdline.assign(tracked.cmdline);
    out.rank = tracked.ranks.rank;
    out.local_rank = tracked.ranks.local_rank;
    out.world_size = tracked.ranks.world_size;
    out.gpu_bytes = 0;
    if (is_zombie(tracked.state)) {
      out.rss_bytes = out.pss_bytes = out.uss_bytes = out.swap_bytes = 0;
      out.smaps_readable = !tracked.smaps_denied;
      out.smaps_age_seconds = 0;
      return;
    }
    out.rss_bytes = tracked.rss;
    if (tracked.smaps_known && !tracked.smaps_denied) {
      out.pss_bytes = tracked.smaps.pss_bytes;
      out.uss_bytes = tracked.smaps.uss_bytes;
      out.swap_bytes = tracked.smaps.swap_bytes;
      out.smaps_readable = true;
      out.smaps_age_seconds = now - tracked.smaps_time;
    } else {
      out.pss_bytes = out.uss_bytes = tracked.rss;
      out.swap_bytes = 0;
      out.smaps_readable = false;
      out.smaps_age_seconds = 0;
    }
  }

  // --- files and descriptors ----------------------------------------------------------------

  const char* path_of(int pid, const char* name) {
    char digits[16];
    const auto end = std::to_chars(digits, digits + sizeof digits, pid).ptr;
    path_.assign(roots_.proc);
    path_.push_back('/');
    path_.append(digits, end);
    path_.push_back('/');
    path_.append(name);
    return path_.c_str();
  }

  int open_counted(const char* path) {
    ++stats_.opens;
    int fd = files_.open_read(path);
    if (fd < 0 && out_of_descriptors(-fd)) {
      shrink_budget();
      ++stats_.opens;
      fd = files_.open_read(path);
    }
    return fd;
  }

  // open/read/close.
  int read_once(int pid, const char* name, std::string& buffer, size_t max_bytes) {
    const int fd = open_counted(path_of(pid, name));
    if (fd < 0) {
      buffer.clear();
      return -fd;
    }
    const int error = read_fd(files_, fd, buffer, max_bytes);
    files_.close_fd(fd);
    return error;
  }

  // Through the kept descriptor `fd`, opening (and keeping, within budget) one when there is
  // none. A failed read closes the descriptor.
  int read_kept(int pid, const char* name, int& fd, std::string& buffer, size_t max_bytes) {
    if (fd >= 0) {
      const int error = read_fd(files_, fd, buffer, max_bytes);
      if (error != 0) release(fd);
      return error;
    }
    const int opened = open_counted(path_of(pid, name));
    if (opened < 0) {
      buffer.clear();
      return -opened;
    }
    const int error = read_fd(files_, opened, buffer, max_bytes);
    if (error == 0 && kept_ < budget_) {
      fd = opened;
      ++kept_;
    } else {
      files_.close_fd(opened);
    }
    return error;
  }

  void release(int& fd) {
    if (fd < 0) return;
    files_.close_fd(fd);
    fd = -1;
    --kept_;
  }

  void close_descriptors(Tracked& tracked) {
    release(tracked.stat_fd);
    release(tracked.statm_fd);
    release(tracked.smaps_fd);
  }

  // Out of descriptors: keep fewer from now on, and free some for the rest of the program.
  void shrink_budget() {
    constexpr size_t kFreed = 64;
    budget_ = kept_ > kFreed ? kept_ - kFreed : 0;
    for (auto& [pid, tracked] : table_) {
      if (kept_ <= budget_) return;
      release(tracked.stat_fd);  // the least often read first
    }
    for (auto& [pid, tracked] : table_) {
      if (kept_ <= budget_) return;
      release(tracked.smaps_fd);
    }
    for (auto& [pid, tracked] : table_) {
      if (kept_ <= budget_) return;
      release(tracked.statm_fd);
    }
  }

  Roots roots_;
  Policy policy_;
  FileAccess& files_;
  PidLister lister_;
  uint64_t page_size_ = 4096;
  size_t budget_ = 0;  // descriptors we may keep open
  size_t kept_ = 0;
  uint64_t generation_ = 0;
  Stats stats_;
  std::unordered_map<int, Tracked> table_;
  std::vector<PidEntry> entries_;
  struct Edge {
    int ppid;
    int pid;
    Tracked* tracked;  // nodes of table_ stay put while it is not modified
  };
  std::vector<Edge> edges_;
  std::vector<int> queue_;
  std::string buffer_;
  std::string path_;
  std::string listing_error_;
};

ProcessCollector::ProcessCollector(Roots roots, Policy policy, FileAccess* files)
    : impl_(std::make_unique<Impl>(std::move(roots), policy, files)) {}
ProcessCollector::~ProcessCollector() = default;
ProcessCollector::ProcessCollector(ProcessCollector&&) noexcept = default;
ProcessCollector& ProcessCollector::operator=(ProcessCollector&&) noexcept = default;

std::vector<ProcessSample> ProcessCollector::collect(double now_seconds, int root_pid) {
  std::vector<ProcessSample> out;
  impl_->collect_into(now_seconds, root_pid, out);
  return out;
}

void ProcessCollector::collect_into(double now_seconds, int root_pid,
                                    std::vector<ProcessSample>& out) {
  impl_->collect_into(now_seconds, root_pid, out);
}

const std::string& ProcessCollector::listing_error() const { return impl_->listing_error(); }
ProcessCollector::Stats ProcessCollector::stats() const { return impl_->stats(); }
size_t ProcessCollector::tracked_processes() const { return impl_->tracked(); }
size_t ProcessCollector::open_descriptors() const { return impl_->kept(); }

}  // namespace memscope::procfs
