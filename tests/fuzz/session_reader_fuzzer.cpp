// libFuzzer target: a session file is untrusted input. Whatever the bytes, opening and streaming
// it must end in a sample stream or a clear error, never a crash.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "store/session_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/memscope-fuzz-session-" + std::to_string(getpid()) + ".db";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  size_t written = 0;
  while (written < size) {
    const ssize_t n = write(fd, data + written, size - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  close(fd);
  unlink((path + "-wal").c_str());
  unlink((path + "-shm").c_str());
  auto reader = memscope::store::SessionReader::open(path);
  if (reader.ok()) {
    (void)reader->events();
    size_t samples = 0;
    (void)reader->for_each_sample([&samples](const memscope::Sample&) { return ++samples < 1000; }).ok();
  }
  return 0;
}
