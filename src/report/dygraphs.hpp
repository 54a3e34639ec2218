// Debian's libjs-dygraphs, embedded into the binary at build time (cmake/embed_dygraphs.cmake)
// so HTML reports open offline.
#pragma once

#include <string_view>

namespace memscope::report {

std::string_view dygraphs_js();
std::string_view dygraphs_css();

}  // namespace memscope::report
