// memscope's documented exit statuses (README "Exit status", `memscope --help`).
#pragma once

namespace memscope::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;   // a runtime failure: could not write a report, sampling failed
constexpr int kExitUsage = 2;     // bad command line: unknown flag/subcommand, bad value
constexpr int kExitBadInput = 3;  // an input file is not ours, damaged, or from a newer memscope
constexpr int kExitNotExecutable = 126;  // run: the command exists but cannot be executed
constexpr int kExitNotFound = 127;       // run: the command does not exist
// run: otherwise the command's own exit status, or 128 + signal number when it died of a signal.
constexpr int kExitSystemRefused = 4;   // system cleanup / swap --clear / kill --yes refused
constexpr int kExitSystemWarning = 5;   // system status --check: overall warning
constexpr int kExitSystemCritical = 6;  // system status --check: overall critical

inline constexpr const char* kExitStatusHelp =
    "EXIT STATUS\n"
    "  0    success\n"
    "  1    runtime failure (e.g. a report could not be written)\n"
    "  2    usage error: unknown subcommand or flag, invalid value, device that does not exist,\n"
    "       output path that cannot be written (checked before sampling starts)\n"
    "  3    bad input file: not a memscope session, damaged, or written by a newer memscope;\n"
    "       a CSV trace that is missing, malformed, or whose time goes backwards; a snapshot\n"
    "       that is not a data-only pickle, truncated, or of the wrong shape; fragment --pid of\n"
    "       a process not under the allocation tracker\n"
    "  agent: 1 the address cannot be bound; 2 also a non-loopback --listen without --token-file;\n"
    "       3 a bad token file (missing, empty, not one token, or readable by others);\n"
    "       distributed: the same for --role worker and master\n"
    "  estimate: 0 also when it does not fit (a 'fits ... NO' line); 3 a model config that is\n"
    "       unreadable, not JSON, missing fields or impossible\n"
    "  system: 4 refused: cleanup or swap --clear not as root, swap --clear when MemAvailable\n"
    "       cannot hold the swapped pages plus a margin, swap --clear or kill --yes with a\n"
    "       --proc-root other than /proc; status --check: 5 warning, 6 critical; kill: 1 no\n"
    "       process matches (or only protected ones), 2 no --match when stdin is not a terminal\n"
    "  interactive, top: 2 also when stdin or stdout is not a terminal\n"
    "  env: 2 also an unknown --shell, or a --write file that exists (without --force);\n"
    "       3 a --snapshot-sim file that is unreadable, not JSON or not a fragment --simulate report\n"
    "  run, oom -- CMD: the command's exit status; 128+N when it died of signal N (137 when the\n"
    "       kernel OOM killer killed it); 127 when the command does not exist; 126 when it cannot\n"
    "       be run\n";

}  // namespace memscope::cli
