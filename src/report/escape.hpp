// Escaping of untrusted text (command lines, process names) for each output format.
#pragma once

#include <string>
#include <string_view>

namespace memscope::report {

// The text with every invalid UTF-8 sequence replaced by U+FFFD (process names and command
// lines are bytes, JSON needs UTF-8).
std::string valid_utf8(std::string_view text);
// Text content or attribute value in HTML: & < > " ' escaped.
std::string html_escape(std::string_view text);
// JSON text safe inside <script>: '<', '>' and '&' (which JSON only has inside strings) become
// \u003c, \u003e, \u0026, so "</script>" in a command line cannot end the script element.
std::string json_for_script(std::string_view json);
// One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF.
std::string csv_field(std::string_view text);
// A string for a single-quoted gnuplot string: ' doubled, control characters dropped.
std::string gnuplot_quote(std::string_view text);

}  // namespace memscope::report
