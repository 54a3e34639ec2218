# Writes a C++ file holding dygraphs' JS and CSS as byte arrays (raw strings would hit
# compiler limits on string-literal length).
function(to_array var file)
  file(READ ${file} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  set(${var} "${bytes}" PARENT_SCOPE)
endfunction()
to_array(js_bytes ${JS})
to_array(css_bytes ${CSS})
file(WRITE ${OUT} "// Generated from Debian's libjs-dygraphs; do not edit.\n#include <string_view>\nnamespace memscope::report {\nstatic const unsigned char kJs[] = {${js_bytes} 0};\nstatic const unsigned char kCss[] = {${css_bytes} 0};\nstd::string_view dygraphs_js() { return {reinterpret_cast<const char*>(kJs), sizeof(kJs) - 1}; }\nstd::string_view dygraphs_css() { return {reinterpret_cast<const char*>(kCss), sizeof(kCss) - 1}; }\n}  // namespace memscope::report\n")
