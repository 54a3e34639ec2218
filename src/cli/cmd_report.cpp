// memscope report SESSION [--html F] [--json F] [--csv F]
// Without an output flag, prints the summary table of the recording.
#include <iostream>
#include <memory>

#include "analyze/peaks.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "cli/session_outputs.hpp"
#include "report/summary_table.hpp"
#include "store/session_reader.hpp"

namespace memscope::cli {
namespace {

struct ReportOptions {
  std::string session;
  SessionOutputs outputs;
};

int report_session(const ReportOptions& options) {
  auto reader = store::SessionReader::open(options.session);
  if (!reader) {
    std::cerr << "memscope report: " << reader.message() << "\n";
    return kExitBadInput;
  }
  if (Status writable = options.outputs.check(); !writable) {
    std::cerr << "memscope report: " << writable.message() << "\n";
    return kExitUsage;
  }
  if (!options.outputs.any()) {
    analyze::PeakTracker peaks;
    Status streamed = reader->for_each_sample([&peaks](const Sample& sample) {
      peaks.add(sample);
      return true;
    });
    if (!streamed) {
      std::cerr << "memscope report: " << streamed.message() << "\n";
      return kExitBadInput;
    }
    std::cout << report::render_summary(peaks.summary(), reader->info());
    return kExitOk;
  }
  if (Status written = options.outputs.write_from_session(options.session); !written) {
    std::cerr << "memscope report: " << written.message() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

Runner attach_report(CLI::App& sub, const GlobalOptions& /*global*/) {
  auto options = std::make_shared<ReportOptions>();
  sub.add_option("session", options->session, "Session file recorded by `memscope run`")
      ->required();
  options->outputs.add_flags(sub);
  return [options]() { return report_session(*options); };
}

}  // namespace memscope::cli
