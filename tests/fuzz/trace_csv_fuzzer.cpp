// libFuzzer target: a CSV trace is untrusted input. Whatever the bytes, reading it must end in a
// sample stream or a clear error, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "collect/trace_csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  size_t samples = 0;
  const memscope::Status status =
      memscope::trace::for_each_csv_sample(in, "fuzz.csv", [&samples](const memscope::Sample&) {
        ++samples;
        return samples < 100000;
      });
  if (!status.ok() && status.message().empty()) __builtin_trap();  // every error says what
  return 0;
}
