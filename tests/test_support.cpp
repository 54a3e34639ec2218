#include "test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace memscope::testing {
namespace {

std::string env_path(const char* name, const char* built_in) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : built_in;
}

}  // namespace

std::string test_data_dir() { return env_path("MEMSCOPE_TEST_DATA", MEMSCOPE_TEST_DATA_DEFAULT); }
std::string fake_nvml_library() { return env_path("MEMSCOPE_FAKE_NVML", MEMSCOPE_FAKE_NVML_DEFAULT); }
std::string memscope_binary() { return env_path("MEMSCOPE_BIN", MEMSCOPE_BIN_DEFAULT); }
std::string demo_binary() { return env_path("MEMSCOPE_DEMO", MEMSCOPE_DEMO_DEFAULT); }
std::string spawn_tree_binary() { return env_path("MEMSCOPE_SPAWN_TREE", MEMSCOPE_SPAWN_TREE_DEFAULT); }
std::string grow_binary() { return env_path("MEMSCOPE_GROW", MEMSCOPE_GROW_DEFAULT); }
std::string shared_dir() { return env_path("MEMSCOPE_SHARED", MEMSCOPE_SHARED_DEFAULT); }
std::string source_dir() { return env_path("MEMSCOPE_SOURCE_DIR", MEMSCOPE_SOURCE_DIR_DEFAULT); }
std::string track_library() {
  return env_path("MEMSCOPE_TRACK_LIBRARY", MEMSCOPE_TRACK_LIBRARY_DEFAULT);
}
std::string track_leak_c_binary() {
  return env_path("MEMSCOPE_TRACK_LEAK_C", MEMSCOPE_TRACK_LEAK_C_DEFAULT);
}
std::string track_leak_cpp_binary() {
  return env_path("MEMSCOPE_TRACK_LEAK_CPP", MEMSCOPE_TRACK_LEAK_CPP_DEFAULT);
}
std::string track_noleak_binary() {
  return env_path("MEMSCOPE_TRACK_NOLEAK", MEMSCOPE_TRACK_NOLEAK_DEFAULT);
}
std::string track_threads_binary() {
  return env_path("MEMSCOPE_TRACK_THREADS", MEMSCOPE_TRACK_THREADS_DEFAULT);
}
std::string track_heap_binary() {
  return env_path("MEMSCOPE_TRACK_HEAP", MEMSCOPE_TRACK_HEAP_DEFAULT);
}
std::string track_cuda_binary() {
  return env_path("MEMSCOPE_TRACK_CUDA", MEMSCOPE_TRACK_CUDA_DEFAULT);
}
std::string track_fork_dlopen_binary() {
  return env_path("MEMSCOPE_TRACK_FORK_DLOPEN", MEMSCOPE_TRACK_FORK_DLOPEN_DEFAULT);
}
std::string track_exec_target_binary() {
  return env_path("MEMSCOPE_TRACK_EXEC_TARGET", MEMSCOPE_TRACK_EXEC_TARGET_DEFAULT);
}
std::string track_plugin_library() {
  return env_path("MEMSCOPE_TRACK_PLUGIN", MEMSCOPE_TRACK_PLUGIN_DEFAULT);
}
std::string track_static_binary() {
  return env_path("MEMSCOPE_TRACK_STATIC", MEMSCOPE_TRACK_STATIC_DEFAULT);
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "memscope-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env, double timeout_seconds) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    setpgid(0, 0);
    const int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    for (const auto& [key, value] : env) setenv(key.c_str(), value.c_str(), 1);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 && !killed) {
      kill(-pid, SIGKILL);
      killed = true;
    }
    if (poll(fds, 2, killed ? 1000 : static_cast<int>(std::min<long long>(left.count(), 1000))) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buffer[65536];
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  return result;
}

BackgroundCommand::BackgroundCommand(const std::vector<std::string>& argv,
                                     const std::map<std::string, std::string>& env) {
  const std::string out_path = dir_.file("out");
  const std::string err_path = dir_.file("err");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    setpgid(0, 0);
    const int null_fd = open("/dev/null", O_RDONLY);
    const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    for (const auto& [key, value] : env) setenv(key.c_str(), value.c_str(), 1);
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  setpgid(pid_, pid_);
}

BackgroundCommand::~BackgroundCommand() {
  if (!reaped_ && pid_ > 0) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void BackgroundCommand::signal(int signal_number) const { kill(pid_, signal_number); }
void BackgroundCommand::signal_group(int signal_number) const { kill(-pid_, signal_number); }

CommandResult BackgroundCommand::wait(double timeout_seconds) {
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    usleep(20000);
  }
  reaped_ = true;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  result.out = read_file(dir_.file("out"));
  result.err = read_file(dir_.file("err"));
  return result;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << text;
}

HttpReply http_request(int port, const std::string& method, const std::string& path,
                       const std::string& body, const std::string& token) {
  HttpReply reply;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return reply;
  timeval timeout{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return reply;
  }
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
  if (method == "POST") request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n" + body;
  (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string all;
  char buffer[65536];
  for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) {
    all.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  const size_t end = all.find("\r\n\r\n");
  if (all.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return reply;
  reply.status = std::stoi(all.substr(9, 3));
  reply.head = all.substr(0, end);
  reply.body = all.substr(end + 4);
  return reply;
}

}  // namespace memscope::testing
