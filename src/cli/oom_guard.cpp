#include "cli/oom_guard.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "cli/common.hpp"
#include "core/log.hpp"
#include "core/units.hpp"
#include "report/oom_report.hpp"

namespace memscope::cli {

void GuardFlags::add_flags(CLI::App& sub) {
  sub.add_option("--threshold", threshold_percent,
                 "Usage (percent of the limit) from which the risk is high; medium from 15 "
                 "points below, critical from 95 %")
      ->capture_default_str();
  sub.add_option("--limit", limit,
                 "A limit for the watched process tree (e.g. 2GiB, 1536MiB); default: what the "
                 "host's tightest limit leaves it");
  sub.add_option("--on", on,
                 "Action at a risk level: LEVEL=signal:SIG (to the target) or LEVEL=exec:CMD "
                 "(assessment in MEMSCOPE_* variables); LEVEL is medium, high or critical");
  sub.add_flag("--kill", kill,
               "At critical, SIGTERM the largest process of the target's tree, SIGKILL after "
               "--kill-grace");
  sub.add_option("--kill-grace", kill_grace_seconds, "Seconds between SIGTERM and SIGKILL")
      ->capture_default_str();
  sub.add_flag("--dry-run", dry_run, "Print the actions instead of taking them");
  sub.add_option("--events", events_path,
                 "Append one JSON object per line for every level change and action");
}

Result<GuardConfig> check_guard_flags(const GuardFlags& flags, bool has_target) {
  GuardConfig config;
  config.params.threshold_percent = flags.threshold_percent;
  if (!(flags.threshold_percent >= 1 && flags.threshold_percent <= 100)) {
    return make_error(
        fmt::format("--threshold must be between 1 and 100 (got {})", flags.threshold_percent));
  }
  if (auto invalid = analyze::validate(config.params)) return make_error(*invalid);
  if (!flags.limit.empty()) {
    const auto bytes = parse_size(flags.limit);
    if (!bytes || *bytes == 0) {
      return make_error(fmt::format(
          "--limit: '{}' is not a size (use e.g. 2GiB, 1536MiB, 500MB or a number of bytes)",
          flags.limit));
    }
    config.tree_limit = *bytes;
  }
  for (const std::string& text : flags.on) {
    auto spec = act::parse_action(text);
    if (!spec) return make_error(fmt::format("--on {}: {}", text, spec.message()));
    if (spec->kind == act::ActionSpec::Kind::kSignal && !has_target) {
      return make_error(fmt::format(
          "--on {}: a signal needs a target: give --pid PID or a command after --", text));
    }
    config.actions.push_back(std::move(*spec));
  }
  if (flags.kill && !has_target) {
    return make_error("--kill needs a target: give --pid PID or a command after --");
  }
  if (!(flags.kill_grace_seconds >= 0 && std::isfinite(flags.kill_grace_seconds))) {
    return make_error(
        fmt::format("--kill-grace must be 0 or more seconds (got {})", flags.kill_grace_seconds));
  }
  config.kill.enabled = flags.kill;
  config.kill.grace_seconds = flags.kill_grace_seconds;
  config.dry_run = flags.dry_run;
  config.events_path = flags.events_path;
  if (!config.events_path.empty()) {
    if (Status writable = check_writable(config.events_path); !writable) {
      return make_error(fmt::format("--events: {}", writable.message()));
    }
  }
  return config;
}

Guard::Guard(const GuardConfig& config, const analyze::ObservationScope& scope, pid_t target,
             bool replay)
    : monitor_(config.params, scope),
      runner_(config.actions, config.kill, config.dry_run || replay, act::ActionTarget{target}) {}

Guard::~Guard() {
  if (events_) std::fclose(events_);
}

Result<std::unique_ptr<Guard>> Guard::create(const GuardConfig& config,
                                             const analyze::ObservationScope& scope, pid_t target,
                                             bool replay) {
  std::unique_ptr<Guard> guard(new Guard(config, scope, target, replay));
  if (!config.events_path.empty()) {
    guard->events_ = std::fopen(config.events_path.c_str(), "ae");
    if (!guard->events_) {
      return make_error(fmt::format("cannot open --events file '{}': {}", config.events_path,
                                    std::strerror(errno)));
    }
  }
  return guard;
}

void Guard::emit(const nlohmann::json& event) {
  if (!events_) return;
  const std::string line =
      event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (std::fputs(line.c_str(), events_) < 0 || std::fflush(events_) != 0) {
    log::error("could not write to the --events file: {}", std::strerror(errno));
  }
}

nlohmann::json Guard::action_json(const act::ActionRecord& record) const {
  nlohmann::json event = {{"t", std::round(record.t_seconds * 1000.0) / 1000.0},
                          {"resource", record.resource},
                          {"level", analyze::to_string(record.level)},
                          {"action", record.action},
                          {"dry_run", record.dry_run},
                          {"ok", record.ok}};
  if (record.pid != 0) event["pid"] = record.pid;
  if (!record.ok) event["error"] = record.error;
  // The assessment behind it, for the fields every event carries.
  for (const analyze::Assessment& a : monitor_.assessments()) {
    if (a.resource != record.resource) continue;
    event["usage_percent"] = std::round(a.usage_percent * 100.0) / 100.0;
    event["predicted_oom_time_seconds"] =
        a.predicted_oom_seconds
            ? nlohmann::json(std::round(*a.predicted_oom_seconds * 1000.0) / 1000.0)
            : nlohmann::json(nullptr);
  }
  return event;
}

std::vector<nlohmann::json> Guard::add(const Sample& sample) {
  std::vector<nlohmann::json> out;
  for (const analyze::LevelChange& change : monitor_.add(sample)) {
    out.push_back(report::level_change_json(change));
  }
  const analyze::RiskLevel now = monitor_.overall();
  if (now != overall_) {
    const analyze::Assessment* cause = monitor_.most_urgent();
    if (cause) {
      for (const act::ActionRecord& record :
           runner_.on_level_change(overall_, now, *cause, sample.processes, sample.t_seconds)) {
        out.push_back(action_json(record));
        actions_.push_back(out.back());
      }
    }
    overall_ = now;
  }
  for (const nlohmann::json& event : out) emit(event);
  return out;
}

std::vector<nlohmann::json> Guard::tick(double now_seconds) {
  std::vector<nlohmann::json> out;
  for (const act::ActionRecord& record : runner_.tick(now_seconds)) {
    out.push_back(action_json(record));
    actions_.push_back(out.back());
    emit(out.back());
  }
  return out;
}

}  // namespace memscope::cli
