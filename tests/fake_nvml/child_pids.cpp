#include "child_pids.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace memscope::fake_nvml {
namespace {

namespace fs = std::filesystem;

// False when no thread has a children file (kernel without CONFIG_PROC_CHILDREN).
bool children_from_task_files(std::vector<unsigned>* pids) {
  std::error_code error;
  bool found_any = false;
  for (const auto& task : fs::directory_iterator("/proc/self/task", error)) {
    std::ifstream file(task.path() / "children");
    if (!file) continue;
    found_any = true;
    unsigned pid = 0;
    while (file >> pid) pids->push_back(pid);
  }
  return found_any;
}

void children_from_stat_files(std::vector<unsigned>* pids) {
  const long self = static_cast<long>(getpid());
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() ||
        !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    std::ifstream file(entry.path() / "stat");
    std::string stat;  // one line
    if (!std::getline(file, stat)) continue;
    // "PID (comm) STATE PPID ...": comm may hold spaces and ')', so parse after the last ')'.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    long ppid = 0;
    // A zombie has no GPU context any more; the driver would not list it.
    if (rest >> state >> ppid && ppid == self && state != 'Z') {
      pids->push_back(static_cast<unsigned>(std::stoul(name)));
    }
  }
}

}  // namespace

std::vector<unsigned> child_pids() {
  std::vector<unsigned> pids;
  if (!children_from_task_files(&pids)) children_from_stat_files(&pids);
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

}  // namespace memscope::fake_nvml
