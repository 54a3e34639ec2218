#include "cli/session_outputs.hpp"

#include <utility>
#include <vector>

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
  const report::SampleStream stream = [&reader](const SampleVisitor& visit) {
    return reader->for_each_sample(visit);
  };
  const auto events = reader->events();
  using Writer = Status (*)(const std::string&, const RecordingInfo&,
                            const std::vector<RecordingEvent>&, const report::SampleStream&);
  const std::pair<const std::string*, Writer> renderings[] = {
      {&html, report::write_session_html},
      {&json, report::write_session_json},
      {&csv, report::write_session_csv},
  };
  for (const auto& [path, write] : renderings) {
    if (path->empty()) continue;
    if (Status written = write(*path, reader->info(), events, stream); !written) return written;
  }
  return {};
}

}  // namespace memscope::cli
