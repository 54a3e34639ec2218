// libFuzzer target: every procfs and cgroup parser over arbitrary text. They must never crash,
// hang or read out of bounds; errors are fine.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "collect/linux/cgroup_files.hpp"
#include "collect/linux/pid_files.hpp"
#include "collect/linux/system_files.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memscope::procfs;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bool estimated = false;
  (void)parse_meminfo(text, &estimated).ok();
  (void)parse_pressure(text).ok();
  (void)parse_vmstat(text).ok();
  (void)parse_pid_stat(text).ok();
  (void)parse_statm_resident_pages(text).ok();
  (void)parse_smaps_rollup(text).ok();
  (void)parse_environ_ranks(text);
  std::string cmdline;
  parse_cmdline_into(text, cmdline);
  (void)parse_pid_cgroup(text);
  (void)parse_cgroup_counter(text).ok();
  (void)parse_memory_max(text).ok();
  (void)parse_v1_limit(text).ok();
  (void)parse_memory_events(text).ok();
  (void)parse_oom_control(text).ok();
  return 0;
}
