// Per-process memory (RSS, PSS, USS, swap) of every process or of one process tree, on the hot
// path of every sample: 1,000 processes must cost a small fraction of what psutil pays.
//
// Sampling policy (README: "How processes are sampled")
// -----------------------------------------------------
// - Every collect lists <proc> (one getdents pass over a directory kept open).
// - A pid seen for the first time has its stat read (ppid, comm, state, start time); the pair
//   (pid, start time) identifies the process from then on. cmdline and environ (RANK,
//   LOCAL_RANK, WORLD_SIZE) are read once, when the process is first sampled. Kernel threads
//   are remembered and never sampled.
// - Each sampled process keeps a descriptor open on statm, smaps_rollup and stat; they are read
//   again with pread(fd, buf, n, 0), since procfs regenerates the content at offset 0. No
//   open/close per sample.
// - statm (resident pages) is read every sample: it is cheap and gives RSS.
// - smaps_rollup (PSS, USS = Private_Clean + Private_Dirty, swap) is costly and read only when
//   RSS moved by more than max(rss_change_min_bytes, rss_change_fraction x RSS at the last
//   smaps read) since that read, or the last read is older than smaps_max_age_seconds. The first
//   age-based refresh of a new process comes after a pid-dependent fraction (10-100 %) of
//   smaps_max_age_seconds, so 1,000 processes that appear together (and then idle) spread their
//   refreshes over the whole period instead of all re-reading in one sample. ProcessSample::
//   smaps_age_seconds says how old pss/uss/swap are.
// - stat is read again every stat_refresh_seconds for sampled processes (state; ppid changes when
//   a parent dies and the child is re-parented; comm changes on exec, which also re-reads
//   cmdline and environ), the first time after a pid-dependent 10-100 % of the period, again so
//   that processes found together refresh apart. A new start time there, or a new inode of
//   <proc>/PID in the listing (checked against the start time), means the pid was reused: the
//   entry starts over.
// - With root_pid set, only the tree (root_pid and its descendants by ppid) is sampled, but every
//   new pid's stat is read once to learn its ppid (cached per pid + start time).
// - A process whose files fail with ESRCH or ENOENT has exited between listing and reading: it
//   is dropped from the sample without a word and its descriptors closed. A zombie is reported
//   with state 'Z' and zero memory. An smaps_rollup read failing with ESRCH on a kept descriptor
//   usually means exec (the descriptor holds the old address space): it is opened again.
// - EACCES/EPERM on smaps_rollup (another user's process): smaps_readable = false, pss = uss =
//   rss from then on, and smaps_rollup is not tried again for that process.
// - The RLIMIT_NOFILE soft limit is raised to the hard limit once; at most that limit minus 256
//   descriptors are kept. Past that, or when open fails with EMFILE/ENFILE (the budget then
//   shrinks and some kept descriptors are closed), files are read with open/read/close.
// - Buffers, paths and the process table are reused between samples; collect_into() also reuses
//   the caller's vector and strings, so a steady state allocates nothing per sample.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "collect/linux/file_access.hpp"
#include "collect/linux/roots.hpp"
#include "core/sample.hpp"

namespace memscope::procfs {

// Not thread-safe: one collector per sampling thread.
class ProcessCollector {
 public:
  struct Policy {
    double smaps_max_age_seconds = 10.0;
    double rss_change_fraction = 0.02;
    uint64_t rss_change_min_bytes = 1 << 20;
    double stat_refresh_seconds = 5.0;
    bool read_environ = true;
    bool keep_fds = true;  // false: open/read/close every file every time (for comparison)
  };

  // What the collector has read since it was made; a measure of its cost.
  struct Stats {
    uint64_t stat_reads = 0;
    uint64_t statm_reads = 0;
    uint64_t smaps_reads = 0;
    uint64_t environ_reads = 0;
    uint64_t cmdline_reads = 0;
    uint64_t opens = 0;  // open() calls, including those that failed
  };

  // files: the seam for tests; nullptr means the real system calls.
  ProcessCollector(Roots roots, Policy policy, FileAccess* files = nullptr);
  explicit ProcessCollector(Roots roots) : ProcessCollector(std::move(roots), Policy{}) {}
  ~ProcessCollector();
  ProcessCollector(ProcessCollector&&) noexcept;
  ProcessCollector& operator=(ProcessCollector&&) noexcept;

  // root_pid 0: every process (kernel threads excepted); otherwise the tree rooted at root_pid:
  // it and every descendant by ppid. now_seconds is the caller's monotonic clock (the policy
  // above is measured in it). Sorted by pid. Never fails: what cannot be read is left out.
  std::vector<ProcessSample> collect(double now_seconds, int root_pid = 0);
  // The same into `out`, reusing its elements' storage.
  void collect_into(double now_seconds, int root_pid, std::vector<ProcessSample>& out);

  // Why the last collect found nothing, when <proc> itself could not be listed; else empty.
  const std::string& listing_error() const;
  Stats stats() const;
  size_t tracked_processes() const;  // pids remembered, sampled or not
  size_t open_descriptors() const;   // descriptors kept open between samples

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memscope::procfs
