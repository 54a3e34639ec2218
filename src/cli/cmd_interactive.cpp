// memscope interactive [--interval S] [--no-gpu] [--devices I...]   (alias: memscope top)
// A full-screen live view: GPUs, host memory and swap against the tightest limit with the OOM
// forecast, and a sortable, filterable process table with a details view. The data model and
// every cell's text live in report/top_model (unit-tested); this file reads keys and draws.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "act/actions.hpp"
#include "act/system_actions.hpp"
#include "analyze/oom.hpp"
#include "cli/common.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "cli/tui_screen.hpp"
#include "core/log.hpp"
#include "core/units.hpp"
#include "report/top_model.hpp"

namespace memscope::cli {
namespace {

using report::ProcessRow;
using report::TopModel;
using tui::Screen;
using tui::Style;

struct InteractiveOptions {
  double interval_seconds = 1;
  std::vector<int> devices;
  bool no_gpu = false;
};

enum class Mode { kTable, kFilter, kConfirmKill, kDetails };

// What the user is doing: the view, the selection, a prompt or a passing message.
struct ViewState {
  Mode mode = Mode::kTable;
  Mode before_confirm = Mode::kTable;
  int selected_pid = 0;
  size_t selected_index = 0;
  size_t first_row = 0;       // scroll offset of the table
  std::string filter_before;  // restored when a filter edit is cancelled
  int kill_pid = 0;
  uint64_t kill_start_ticks = 0;  // the chosen process's start time: a reused pid is not it
  std::string kill_name;
  std::string message;
  double message_until = 0;
  size_t graph_device = 0;  // the history line: 0 the selected process, i > 0 the i-th GPU
  bool quit = false;
};

Style level_style(double fraction) {
  if (fraction >= 0.9) return Style::kBad;
  if (fraction >= 0.7) return Style::kWarn;
  return Style::kGood;
}

// Draws a line made by top_model, colouring its "[###...]" bar by how full it is.
void draw_with_bar(Screen& screen, int y, const std::string& text, double fraction) {
  screen.line(y, text);
  const size_t open = text.find('[');
  const size_t close = text.find(']', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos) return;
  screen.text(y, static_cast<int>(open), text.substr(open, close - open + 1),
              level_style(fraction));
}

double fraction_of(uint64_t used, uint64_t total) {
  return total == 0 ? 0 : static_cast<double>(used) / static_cast<double>(total);
}

std::string clock_text() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%H:%M:%S", &local);
  return buffer;
}

std::string read_small_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return {};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class InteractiveView {
 public:
  InteractiveView(const GlobalOptions& global, const InteractiveOptions& options, Screen& screen,
                  bool has_gpus, std::vector<std::string> notes)
      : global_(global),
        options_(options),
        screen_(screen),
        has_gpus_(has_gpus),
        notes_(std::move(notes)) {}

  TopModel& model() { return model_; }
  bool quit() const { return state_.quit || Screen::quit_requested(); }

  void draw(double now) {
    screen_.erase();
    if (state_.mode == Mode::kDetails) {
      draw_details();
    } else {
      draw_table();
    }
    draw_footer(now);
    screen_.show();
  }

  void handle_key(int key, double now) {
    if (key == tui::key_resize()) return;  // ncurses has the new size; the next draw uses it
    switch (state_.mode) {
      case Mode::kFilter: return filter_key(key);
      case Mode::kConfirmKill: return confirm_key(key, now);
      case Mode::kDetails:
        if (key == 27 || key == tui::key_left() || key == tui::key_backspace() || key == 127 ||
            key == '\r' || key == '\n' || key == tui::key_enter()) {
          state_.mode = Mode::kTable;
          return;
        }
        if (key == 'q') state_.quit = true;
        if (key == 'k') ask_kill(Mode::kDetails);
        return;
      case Mode::kTable: return table_key(key);
    }
  }

 private:
  // Rows of the table that fit between the panes above and the two lines below.
  int table_top() const {
    return 1 + static_cast<int>(shown_devices()) + (hidden_devices() > 0 ? 1 : 0) + 2;
  }
  int table_rows() const { return std::max(0, screen_.rows() - table_top() - 1 - 2); }
  size_t shown_devices() const {
    const size_t count = std::max<size_t>(model_.devices().size(), 1);
    const auto room = static_cast<size_t>(std::max(1, (screen_.rows() - 12) / 2));
    return std::min(count, room);
  }
  size_t hidden_devices() const {
    const size_t count = model_.devices().size();
    return count > shown_devices() ? count - shown_devices() : 0;
  }

  std::vector<ProcessRow> rows_with_selection() {
    std::vector<ProcessRow> rows = model_.visible_rows();
    // The selection follows its process through re-sorting; when it is gone, the row at the
    // same position is selected instead.
    size_t index = rows.empty() ? 0 : std::min(state_.selected_index, rows.size() - 1);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].pid == state_.selected_pid) index = i;
    }
    state_.selected_index = index;
    state_.selected_pid = rows.empty() ? 0 : rows[index].pid;
    return rows;
  }

  void draw_table() {
    const auto width = static_cast<size_t>(std::max(screen_.cols(), 1));
    const std::vector<ProcessRow> rows = rows_with_selection();
    std::string title = fmt::format("memscope top  {}  every {}s  sort: {}{}", clock_text(),
                                    options_.interval_seconds, report::to_string(model_.sort()),
                                    model_.tree() ? "  [tree]" : "");
    if (!model_.filter().empty()) title += fmt::format("  filter: {}", model_.filter());
    title += fmt::format("  {} processes", rows.size());
    screen_.line(0, report::fit_left(title, width), Style::kTitle);

    int y = 1;
    if (model_.devices().empty()) {
      std::string why = has_gpus_ ? "no GPU" : "no GPU (NVML not loaded)";
      if (!has_gpus_ && !notes_.empty()) why = notes_.front();
      screen_.line(y++, report::fit_left(fmt::format("GPU  {}", why), width), Style::kDim);
    }
    for (size_t i = 0; i < model_.devices().size() && i < shown_devices(); ++i) {
      const report::DeviceRow& device = model_.devices()[i];
      draw_with_bar(screen_, y++, report::device_line(device, width),
                    fraction_of(device.device.used_bytes, device.device.total_bytes));
    }
    if (hidden_devices() > 0) {
      screen_.line(y++, fmt::format("     ... {} more GPUs (a taller terminal shows them)",
                                    hidden_devices()),
                   Style::kDim);
    }
    const SystemSample& system = model_.host().system;
    draw_with_bar(screen_, y++, report::host_memory_line(model_.host(), width),
                  fraction_of(system.used_bytes, system.limit_bytes));
    const uint64_t swap_used = system.meminfo.swap_total_bytes > system.meminfo.swap_free_bytes
                                   ? system.meminfo.swap_total_bytes - system.meminfo.swap_free_bytes
                                   : 0;
    draw_with_bar(screen_, y++, report::host_swap_line(model_.host(), width),
                  fraction_of(swap_used, system.meminfo.swap_total_bytes));

    screen_.line(y++, report::process_header(width, model_.sort()), Style::kHeader);
    const auto visible = static_cast<size_t>(table_rows());
    if (state_.selected_index < state_.first_row) state_.first_row = state_.selected_index;
    if (visible > 0 && state_.selected_index >= state_.first_row + visible) {
      state_.first_row = state_.selected_index + 1 - visible;
    }
    if (state_.first_row > rows.size()) state_.first_row = 0;
    for (size_t i = state_.first_row; i < rows.size() && i < state_.first_row + visible; ++i) {
      screen_.line(y++, report::process_line(rows[i], width, model_.tree()),
                   i == state_.selected_index ? Style::kSelected : Style::kNormal);
    }
    if (rows.empty()) {
      screen_.line(y, model_.filter().empty() ? "  (no processes)"
                                              : "  (no process matches the filter)",
                   Style::kDim);
    }
    draw_history_line(screen_.rows() - 2, width);
  }

  // The selected process's RSS + GPU memory over time, or (Tab) a GPU's used memory; without a
  // selected process, GPU 0's.
  void draw_history_line(int y, size_t width) {
    const report::HistoryRing* history = nullptr;
    std::string label;
    if (state_.graph_device > model_.devices().size()) state_.graph_device = 0;
    const ProcessRow* row = model_.find(state_.selected_pid);
    if (state_.graph_device > 0) {
      const report::DeviceRow& device = model_.devices()[state_.graph_device - 1];
      history = model_.device_history(device.device.index);
      label = fmt::format("GPU{} used {}", device.device.index,
                          report::short_bytes(device.device.used_bytes));
    } else if (row) {
      history = model_.process_history(row->pid);
      label = fmt::format("pid {} {} rss+gpu {}", row->pid, row->name,
                          report::short_bytes(row->rss_bytes + row->gpu_bytes));
    } else if (!model_.devices().empty()) {
      const report::DeviceRow& device = model_.devices().front();
      history = model_.device_history(device.device.index);
      label = fmt::format("GPU{} used {}", device.device.index,
                          report::short_bytes(device.device.used_bytes));
    }
    if (!history) return;
    label = report::fit_left(label, std::min<size_t>(36, width / 2));
    screen_.line(y, label, Style::kDim);
    const size_t room = width > label.size() + 2 ? width - label.size() - 2 : 0;
    screen_.sparkline(y, static_cast<int>(label.size() + 1),
                      report::sparkline_levels(history->values(), room));
  }

  void draw_details() {
    const auto width = static_cast<size_t>(std::max(screen_.cols(), 1));
    const ProcessRow* row = model_.find(state_.selected_pid);
    if (!row) {
      screen_.line(0, report::fit_left(fmt::format("pid {}: details", state_.selected_pid), width),
                   Style::kTitle);
      screen_.line(2, fmt::format("  pid {} has exited (Esc: back to the table)",
                                  state_.selected_pid));
      return;
    }
    screen_.line(0,
                 report::fit_left(fmt::format("pid {} {}: details   Esc back  k signal  q quit",
                                              row->pid, row->name),
                                  width),
                 Style::kTitle);
    int y = 1;
    screen_.line(y++, report::fit_left(fmt::format("  cmd  {}", row->cmdline), width));
    std::string ranks = "rank -";
    if (row->rank || row->local_rank) {
      ranks = fmt::format("rank {} local {}", row->rank ? std::to_string(*row->rank) : "-",
                          row->local_rank ? std::to_string(*row->local_rank) : "-");
    }
    screen_.line(y++, report::fit_left(
                          fmt::format("  ppid {}  RSS {}  PSS {}  USS {}  swap {}  {}", row->ppid,
                                      format_bytes(row->rss_bytes), format_bytes(row->pss_bytes),
                                      format_bytes(row->uss_bytes), format_bytes(row->swap_bytes),
                                      ranks),
                          width));
    ++y;
    screen_.line(y++, "  smaps (resident memory by kind of mapping)", Style::kHeader);
    if (!smaps_error_.empty()) {
      screen_.line(y++, report::fit_left(fmt::format("    {}", smaps_error_), width), Style::kDim);
    } else {
      const report::SmapsBreakdown& s = smaps_;
      const auto item = [&](const char* name, uint64_t bytes, const char* what) {
        const double share = fraction_of(bytes, s.rss_bytes);
        screen_.line(y++, report::fit_left(fmt::format("    {:<6} {:>10} {:>5.1f}%  {}", name,
                                                       format_bytes(bytes), 100 * share, what),
                                           width));
      };
      item("heap", s.heap_bytes, "brk heap ([heap])");
      item("anon", s.anon_bytes, "anonymous: malloc arenas, mmap buffers, tensors");
      item("file", s.file_bytes, "mapped files: code, libraries, mmap'd data");
      item("shmem", s.shmem_bytes, "shared memory: /dev/shm, memfd, SysV");
      item("stack", s.stack_bytes, "main thread stack");
      item("other", s.other_bytes, "devices (/dev/nvidia*), vdso");
      screen_.line(y++, report::fit_left(fmt::format("    total  {:>10}  PSS {}  swap {}  ({} "
                                                     "mappings)",
                                                     format_bytes(s.rss_bytes),
                                                     format_bytes(s.pss_bytes),
                                                     format_bytes(s.swap_bytes), s.mappings),
                                         width));
    }
    ++y;
    screen_.line(y++, "  GPU memory", Style::kHeader);
    bool any = false;
    for (const report::DeviceRow& device : model_.devices()) {
      uint64_t bytes = 0;
      for (const GpuProcess& p : device.device.processes) {
        if (static_cast<int>(p.pid) == row->pid) bytes += p.used_bytes;
      }
      if (bytes == 0) continue;
      any = true;
      if (y >= screen_.rows() - 3) break;  // a short terminal: keep the history and footer
      screen_.line(y++, report::fit_left(fmt::format("    GPU{} {:<24} {:>10}", device.device.index,
                                                     device.device.name, format_bytes(bytes)),
                                         width));
    }
    if (!any) screen_.line(y++, "    none", Style::kDim);
    ++y;
    if (const report::HistoryRing* history = model_.process_history(row->pid)) {
      const std::string label = fmt::format("  history (RSS+GPU, {} samples) ", history->size());
      screen_.line(y, label, Style::kDim);
      const size_t room = width > label.size() + 1 ? width - label.size() - 1 : 0;
      screen_.sparkline(y, static_cast<int>(label.size()),
                        report::sparkline_levels(history->values(), room));
    }
  }

  void draw_footer(double now) {
    const auto width = static_cast<size_t>(std::max(screen_.cols(), 1));
    const int y = screen_.rows() - 1;
    switch (state_.mode) {
      case Mode::kFilter:
        screen_.line(y, report::fit_left(fmt::format("filter: {}_   (Enter keep, Esc cancel)",
                                                     model_.filter()),
                                         width),
                     Style::kPrompt);
        return;
      case Mode::kConfirmKill:
        screen_.line(y, report::fit_left(fmt::format("Send SIGTERM to pid {} ({})? [y/n]",
                                                     state_.kill_pid, state_.kill_name),
                                         width),
                     Style::kPrompt);
        return;
      default: break;
    }
    if (!state_.message.empty() && now < state_.message_until) {
      screen_.line(y, report::fit_left(state_.message, width), Style::kWarn);
      return;
    }
    screen_.line(y,
                 report::fit_left("q quit  sort: m mem g gpu r growth p pid n name  / filter  "
                                  "t tree  Enter details  k kill  Tab graph",
                                  width),
                 Style::kTitle);
  }

  void table_key(int key) {
    const std::vector<ProcessRow> rows = model_.visible_rows();
    const size_t page = static_cast<size_t>(std::max(1, table_rows() - 1));
    const auto select = [&](size_t index) {
      if (rows.empty()) return;
      state_.selected_index = std::min(index, rows.size() - 1);
      state_.selected_pid = rows[state_.selected_index].pid;
    };
    if (const auto sort = report::sort_key_for(key)) {
      model_.set_sort(*sort);
      return;
    }
    if (key == 'q') {
      state_.quit = true;
    } else if (key == '\t') {
      state_.graph_device = (state_.graph_device + 1) % (model_.devices().size() + 1);
    } else if (key == 't') {
      model_.set_tree(!model_.tree());
    } else if (key == '/') {
      state_.filter_before = model_.filter();
      state_.mode = Mode::kFilter;
    } else if (key == 27) {
      model_.set_filter("");
    } else if (key == tui::key_up()) {
      select(state_.selected_index > 0 ? state_.selected_index - 1 : 0);
    } else if (key == tui::key_down()) {
      select(state_.selected_index + 1);
    } else if (key == tui::key_page_up()) {
      select(state_.selected_index > page ? state_.selected_index - page : 0);
    } else if (key == tui::key_page_down()) {
      select(state_.selected_index + page);
    } else if (key == tui::key_home()) {
      select(0);
    } else if (key == tui::key_end()) {
      select(rows.empty() ? 0 : rows.size() - 1);
    } else if (key == '\r' || key == '\n' || key == tui::key_enter()) {
      if (state_.selected_pid != 0) {
        state_.mode = Mode::kDetails;
        refresh_details();
      }
    } else if (key == 'k') {
      ask_kill(Mode::kTable);
    }
  }

  void filter_key(int key) {
    std::string filter = model_.filter();
    if (key == '\r' || key == '\n' || key == tui::key_enter()) {
      state_.mode = Mode::kTable;
    } else if (key == 27) {
      model_.set_filter(state_.filter_before);
      state_.mode = Mode::kTable;
    } else if (key == tui::key_backspace() || key == 127 || key == 8) {
      if (!filter.empty()) filter.pop_back();
      model_.set_filter(filter);
    } else if (key >= 0x20 && key < 0x7f && filter.size() < 64) {
      filter += static_cast<char>(key);
      model_.set_filter(filter);
    }
  }

  void ask_kill(Mode from) {
    const ProcessRow* row = model_.find(state_.selected_pid);
    if (!row) return;
    state_.kill_pid = row->pid;
    state_.kill_start_ticks = row->start_time_ticks;
    state_.kill_name = row->name;
    state_.before_confirm = from;
    state_.mode = Mode::kConfirmKill;
  }

  void confirm_key(int key, double now) {
    state_.mode = state_.before_confirm;
    if (key != 'y' && key != 'Y') {
      say(fmt::format("not sent: pid {} left alone", state_.kill_pid), now);
      return;
    }
    const std::vector<pid_t> protected_pids = act::protected_pids();
    const std::vector<int> memscopes = act::other_instances_of_this_program();
    if (std::find(protected_pids.begin(), protected_pids.end(), state_.kill_pid) !=
            protected_pids.end() ||
        std::find(memscopes.begin(), memscopes.end(), state_.kill_pid) != memscopes.end()) {
      say(fmt::format("not sent: pid {} is init, a memscope or an ancestor of this one",
                      state_.kill_pid),
          now);
      return;
    }
    if (global_.proc_root != "/proc") {  // a fixture tree's pids are not this machine's
      say(fmt::format("not sent: --proc-root {} is not this machine's /proc", global_.proc_root),
          now);
      return;
    }
    // The prompt stays up while the table refreshes: the pid may have exited and been reused.
    const Status sent = act::signal_verified(state_.kill_pid, state_.kill_start_ticks, SIGTERM);
    if (!sent.ok()) {
      say(fmt::format("not sent: {}", sent.message()), now);
      return;
    }
    say(fmt::format("sent SIGTERM to pid {} ({})", state_.kill_pid, state_.kill_name), now);
  }

  void say(std::string message, double now) {
    state_.message = std::move(message);
    state_.message_until = now + 5;
  }

 public:
  // Re-reads the selected process's smaps (the details view, once per refresh).
  void refresh_details() {
    if (state_.mode != Mode::kDetails) return;
    const std::string path = fmt::format("{}/{}/smaps", global_.proc_root, state_.selected_pid);
    std::string error;
    const std::string text = read_small_file(path, error);
    if (!error.empty()) {
      smaps_error_ = fmt::format("cannot read {}: {}", path, error);
      return;
    }
    auto parsed = report::parse_smaps_breakdown(text);
    if (!parsed) {
      smaps_error_ = text.empty() ? fmt::format("{} is empty (a kernel thread, or exited)", path)
                                  : parsed.message();
      return;
    }
    smaps_error_.clear();
    smaps_ = *parsed;
  }

 private:
  const GlobalOptions& global_;
  const InteractiveOptions& options_;
  Screen& screen_;
  bool has_gpus_;
  std::vector<std::string> notes_;
  TopModel model_;
  ViewState state_;
  report::SmapsBreakdown smaps_;
  std::string smaps_error_;
};

int usage_error(const std::string& message) {
  std::cerr << "memscope interactive: " << message << "\n";
  return kExitUsage;
}

int interactive_command(const GlobalOptions& global, const InteractiveOptions& options) {
  if (!(options.interval_seconds >= 0.1 && options.interval_seconds <= 86400)) {
    return usage_error(fmt::format("--interval must be between 0.1 and 86400 seconds (got {})",
                                   options.interval_seconds));
  }
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
    return usage_error("needs a terminal (stdin and stdout must be a tty)");
  }
  auto sampler = open_sampler(global, options.devices, !options.no_gpu);
  if (!sampler) return usage_error(sampler.message());
  (*sampler)->set_scope(0, 0);

  analyze::ObservationScope scope;
  scope.root_pid = 0;
  scope.has_tree = false;
  analyze::OomMonitor monitor(analyze::ModelParams{}, scope);

  const bool color = std::getenv("NO_COLOR") == nullptr || std::getenv("NO_COLOR")[0] == '\0';
  auto screen = Screen::open(color);
  if (!screen) return usage_error(screen.message());
  // Log lines would scribble over the screen; the view shows what matters.
  const log::Level previous_level = log::level();
  log::set_level(log::Level::kOff);

  InteractiveView view(global, options, **screen, (*sampler)->has_gpus(), (*sampler)->notes());
  RecordingClock clock;
  double next_sample = 0;
  while (!view.quit()) {
    const double now = clock.seconds();
    if (now >= next_sample) {
      const Sample sample = (*sampler)->sample(now, RecordingClock::unix_ms());
      monitor.add(sample);
      view.model().update(sample, monitor.assessments());
      view.refresh_details();
      next_sample += options.interval_seconds;
      if (next_sample < now) next_sample = now + options.interval_seconds;
    }
    view.draw(clock.seconds());
    const double wait = std::max(0.0, next_sample - clock.seconds());
    const int key = (*screen)->read_key(static_cast<int>(std::ceil(wait * 1000)));
    if (key >= 0) view.handle_key(key, clock.seconds());
  }
  screen->reset();  // back to the shell's screen before anything more is printed
  log::set_level(previous_level);
  return kExitOk;
}

}  // namespace

Runner attach_interactive(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<InteractiveOptions>();
  sub.add_option("-i,--interval", options->interval_seconds,
                 "Seconds between refreshes (0.1 to 86400)")
      ->capture_default_str();
  sub.add_option("-d,--devices", options->devices, "GPU indices to show (default: all)");
  sub.add_flag("--no-gpu", options->no_gpu, "Do not load NVML; host only");
  // The keys, before the exit statuses every subcommand's help ends with.
  sub.footer(fmt::format(
      "KEYS\n"
      "  m g r p n  sort: mem, GPU, growth, pid, name  /      filter (Esc clears)\n"
      "  t          process tree                       arrows select, PgUp/PgDn page\n"
      "  Enter      details: smaps, GPU per device     Tab    graph: process or a GPU\n"
      "  k          SIGTERM to the selection (y/n)     q      quit\n"
      "  NO_COLOR=1 turns colours off.\n\n{}",
      sub.get_footer()));
  return [&global, options]() { return interactive_command(global, *options); };
}

}  // namespace memscope::cli
