// One self-contained HTML page: dygraphs' JS and CSS inlined, the data inlined as JSON, no
// network. Every string from outside (command lines, process names) is escaped.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "analyze/peaks.hpp"
#include "core/recording.hpp"
#include "report/charts.hpp"

namespace memscope::report {

struct HtmlFact {
  std::string label;
  std::string value;  // plain text
};

struct HtmlPage {
  std::string title;            // plain text: the command, say
  std::vector<HtmlFact> facts;  // the header: outcome, duration, host, ...
  std::string summary_html;     // from summary_html(): trusted markup
  std::vector<RecordingEvent> events;
  std::vector<std::string> notes;
  std::vector<Chart> charts;
};

std::string render_html_page(const HtmlPage& page);

// The summary table (processes in tree order, the tree, GPUs and their processes, host) as
// HTML tables; past max_processes rows the rest are summed in one row.
std::string summary_html(const analyze::PeakSummary& summary, size_t max_processes = 100);

}  // namespace memscope::report
