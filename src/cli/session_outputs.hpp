// --html / --json / --csv: the renderings of a recorded session, shared by `run` and `report`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/result.hpp"

namespace memscope::cli {

struct SessionOutputs {
  std::string html;
  std::string json;
  std::string csv;

  void add_flags(CLI::App& sub);
  bool any() const { return !html.empty() || !json.empty() || !csv.empty(); }
  // Every named output can be written (checked before any work starts).
  Status check() const;
  // Renders the session file into each named output.
  Status write_from_session(const std::string& session_path) const;
};

}  // namespace memscope::cli
