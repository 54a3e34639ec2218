#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace memscope::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};

bool use_color() {
  static const bool color = std::getenv("NO_COLOR") == nullptr && isatty(STDERR_FILENO) == 1;
  return color;
}

}  // namespace

void set_level(Level new_level) { g_level.store(new_level); }
Level level() { return g_level.load(); }
bool enabled(Level at) { return static_cast<int>(at) >= static_cast<int>(g_level.load()); }

void write(Level at, std::string_view message) {
  const char* prefix = "";
  const char* color = "";
  switch (at) {
    case Level::kDebug: prefix = "debug"; color = "\033[2m"; break;
    case Level::kInfo: prefix = "info"; color = "\033[36m"; break;
    case Level::kWarn: prefix = "warning"; color = "\033[33m"; break;
    case Level::kError: prefix = "error"; color = "\033[31m"; break;
    case Level::kOff: return;
  }
  std::string line = use_color() ? fmt::format("memscope: {}{}\033[0m: {}\n", color, prefix, message)
                                 : fmt::format("memscope: {}: {}\n", prefix, message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace memscope::log
