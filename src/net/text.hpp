// Small helpers the HTTP parser, server and client share.
#pragma once

#include <sys/socket.h>
#include <time.h>

#include <cctype>
#include <cerrno>
#include <cstddef>
#include <string>
#include <string_view>

namespace memscope::net {

inline double monotonic_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

inline std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Without leading and trailing spaces and tabs (optional whitespace around header values).
inline std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Appends what a non-blocking socket has to `in`, until it would block, the peer closed it,
// `in` holds more than `cap` bytes, or recv failed (then `error` is its errno).
struct ReadEnd {
  bool eof = false;
  int error = 0;
};
inline ReadEnd read_available(int fd, std::string& in, size_t cap) {
  char buffer[16 * 1024];
  while (in.size() <= cap) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      in.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return {true, 0};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return {false, errno};
  }
  return {};
}

}  // namespace memscope::net
