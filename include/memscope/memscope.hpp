// The whole memscope C++ API: `#include <memscope/memscope.hpp>` and link memscope::memscope
// (find_package(memscope)).
#pragma once

#include "memscope/distributed_monitor.hpp"     // IWYU pragma: export
#include "memscope/fragmentation_analyzer.hpp"  // IWYU pragma: export
#include "memscope/leak_detector.hpp"           // IWYU pragma: export
#include "memscope/memory_profiler.hpp"         // IWYU pragma: export
#include "memscope/oom_detector.hpp"            // IWYU pragma: export
#include "memscope/result.hpp"                  // IWYU pragma: export
// BatchSizeController and BufferPool are written alongside; included once they exist.
#if __has_include("memscope/batch_size_controller.hpp")
#include "memscope/batch_size_controller.hpp"  // IWYU pragma: export
#endif
#if __has_include("memscope/buffer_pool.hpp")
#include "memscope/buffer_pool.hpp"  // IWYU pragma: export
#endif
