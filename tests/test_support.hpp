// Helpers shared by unit and end-to-end tests.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace memscope::testing {

// Paths handed to tests by CMake through the environment (see tests/CMakeLists.txt).
std::string test_data_dir();      // tests/data
std::string fake_nvml_library();  // built fake libnvidia-ml
std::string memscope_binary();    // built memscope
std::string demo_binary();        // built memscope_demo
std::string shared_dir();         // ../shared beside the checkout
std::string source_dir();         // the repository root

// A fresh directory removed (recursively) when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;   // exit status, or 128+signal when killed
  std::string out;      // stdout
  std::string err;      // stderr
};

// Runs argv[0] (found on PATH if it has no slash) with extra environment variables, stdin from
// /dev/null, and waits at most timeout_seconds (then SIGKILL, exit_code 137).
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {},
                          double timeout_seconds = 60);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

}  // namespace memscope::testing
