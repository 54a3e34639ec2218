// Turns the return addresses of a trace's stacks into function, file:line and module, from the
// ELF files named by the trace's MODULE records (libdw; demangled with abi::__cxa_demangle).
// Frames of the Python interpreter (python3*, libpython3*) are flagged as such.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/alloc_trace.hpp"

namespace memscope::alloc {

class Symbolizer {
 public:
  // Modules in trace order; where two cover an address, the later one wins. Files that are
  // missing or unreadable give frames with only module and offset.
  explicit Symbolizer(const std::vector<Module>& modules);
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // The frame for a recorded return address (looked up at ip - 1, the call instruction).
  // Cached: each ip is resolved once.
  const Frame& resolve(uint64_t ip);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace memscope::alloc
