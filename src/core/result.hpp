// Result<T> and Status live with the public API headers (include/memscope/result.hpp).
#pragma once

#include "memscope/result.hpp"  // IWYU pragma: export
