#include "cli/session_outputs.hpp"

#include "cli/common.hpp"
#include "report/session_export.hpp"
#include "store/session_reader.hpp"

namespace memscope::cli {

void SessionOutputs::add_flags(CLI::App& sub) {
  sub.add_option("--html", html, "Write a self-contained HTML report (charts with zoom)");
  sub.add_option("--json", json, "Write the session as JSON");
  sub.add_option("--csv", csv, "Write per-process samples as CSV (t,pid,ppid,comm,rss_bytes,...)");
}

Status SessionOutputs::check() const {
  for (const std::string* path : {&html, &json, &csv}) {
    if (path->empty()) continue;
    if (Status writable = check_writable(*path); !writable) return writable;
  }
  return {};
}

Status SessionOutputs::write_from_session(const std::string& session_path) const {
  if (!any()) return {};
  auto reader = store::SessionReader::open(session_path);
  if (!reader) return reader.error();
  const auto stream = [&reader](const SampleVisitor& visit) {
    return reader->for_each_sample(visit);
  };
  const auto events = reader->events();
  if (!html.empty()) {
    if (Status written = report::write_session_html(html, reader->info(), events, stream);
        !written) {
      return written;
    }
  }
  if (!json.empty()) {
    if (Status written = report::write_session_json(json, reader->info(), events, stream);
        !written) {
      return written;
    }
  }
  if (!csv.empty()) {
    if (Status written = report::write_session_csv(csv, reader->info(), events, stream); !written) {
      return written;
    }
  }
  return {};
}

}  // namespace memscope::cli
