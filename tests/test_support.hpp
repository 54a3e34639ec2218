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
std::string spawn_tree_binary();  // built memscope_spawn_tree
std::string grow_binary();        // built memscope_grow
std::string shared_dir();         // ../shared beside the checkout
std::string source_dir();         // the repository root
// The allocation tracker and the programs it is tested on (tests/track/).
std::string track_library();             // built libmemscope_track.so (MEMSCOPE_TRACK_LIBRARY)
std::string track_leak_c_binary();       // planted leaks in C
std::string track_leak_cpp_binary();     // planted leaks in C++
std::string track_noleak_binary();       // frees everything
std::string track_threads_binary();      // 8 threads, cross-thread frees
std::string track_heap_binary();         // free chunks in two arenas, then allocates slowly
std::string track_cuda_binary();         // GPU allocations through a fake CUDA
std::string track_fork_dlopen_binary();  // dlopen, fork, fork+exec
std::string track_exec_target_binary();  // what track_fork_dlopen execs
std::string track_plugin_library();      // what track_fork_dlopen dlopens
std::string track_static_binary();       // statically linked: LD_PRELOAD cannot attach

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

// A command running in the background in its own process group, output captured to files.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& env = {});
  ~BackgroundCommand();  // kills the whole group if still running
  BackgroundCommand(const BackgroundCommand&) = delete;
  BackgroundCommand& operator=(const BackgroundCommand&) = delete;
  int pid() const { return pid_; }
  void signal(int signal_number) const;        // to the process only
  void signal_group(int signal_number) const;  // to its whole process group
  CommandResult wait(double timeout_seconds = 60);

 private:
  TempDir dir_;
  int pid_ = -1;
  bool reaped_ = false;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

// One HTTP/1.1 request to 127.0.0.1:port on a fresh connection (Connection: close), the answer
// read to the end (20 s at most): status -1 when there was no well-formed answer.
struct HttpReply {
  int status = -1;
  std::string head;  // status line and headers
  std::string body;
};
HttpReply http_request(int port, const std::string& method, const std::string& path,
                       const std::string& body = "", const std::string& token = "");

}  // namespace memscope::testing
