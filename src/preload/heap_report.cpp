#include "preload/heap_report.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include <cstring>

#include "preload/high_fd.hpp"
#include "preload/trace_writer.hpp"

namespace memscope::track {

namespace {

// prefix + "." + pid + suffix, NUL-terminated; false when it does not fit.
bool build_path(char* out, size_t capacity, const char* prefix, uint64_t pid, const char* suffix) {
  const size_t prefix_len = std::strlen(prefix);
  const size_t suffix_len = std::strlen(suffix);
  if (prefix_len + 1 + 20 + suffix_len + 1 > capacity) return false;
  std::memcpy(out, prefix, prefix_len);
  char* end = out + prefix_len;
  *end++ = '.';
  end = put_decimal(end, pid);
  std::memcpy(end, suffix, suffix_len + 1);
  return true;
}

}  // namespace

bool HeapReporter::init(const char* prefix, uint64_t pid) {
  ready_ = build_path(request_, sizeof request_, prefix, pid, ".heap-request") &&
           build_path(temporary_, sizeof temporary_, prefix, pid, ".heap.tmp") &&
           build_path(answer_, sizeof answer_, prefix, pid, ".heap");
  last_check_ns_.store(0, std::memory_order_relaxed);
  return ready_;
}

bool HeapReporter::poll(uint64_t now_ns) {
  if (!ready_) return false;
  uint64_t last = last_check_ns_.load(std::memory_order_relaxed);
  if (now_ns < last || now_ns - last < kHeapCheckIntervalNs) return false;
  // One thread takes each check; the others go on.
  if (!last_check_ns_.compare_exchange_strong(last, now_ns, std::memory_order_relaxed)) {
    return false;
  }
  return answer();
}

bool HeapReporter::answer() {
  if (!ready_) return false;
  // The unlink is the check: one system call when nobody asked, and only one answer per request.
  if (::unlink(request_) != 0) return false;
  // Never through a link someone left at the (predictable) name, and on a descriptor at the top
  // of the table, not the lowest free one a program that is reopening its stdio expects.
  ::unlink(temporary_);
  const int low = ::open(temporary_, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (low < 0) return false;
  const int fd = move_fd_high(low, 16);
  FILE* file = ::fdopen(fd, "w");
  if (file == nullptr) {
    ::close(fd);
    ::unlink(temporary_);
    return false;
  }
  const bool written = write_heap_report(file);
  if (std::fclose(file) != 0 || !written) {
    ::unlink(temporary_);
    return false;
  }
  if (std::rename(temporary_, answer_) != 0) {
    ::unlink(temporary_);
    return false;
  }
  return true;
}

bool write_heap_report(FILE* file) {
  const struct mallinfo2 info = mallinfo2();
  const int printed = std::fprintf(
      file,
      "mallinfo2 arena=%zu ordblks=%zu smblks=%zu hblks=%zu hblkhd=%zu fsmblks=%zu uordblks=%zu "
      "fordblks=%zu keepcost=%zu\n",
      info.arena, info.ordblks, info.smblks, info.hblks, info.hblkhd, info.fsmblks, info.uordblks,
      info.fordblks, info.keepcost);
  if (printed < 0) return false;
  return malloc_info(0, file) == 0 && std::ferror(file) == 0;
}

}  // namespace memscope::track
