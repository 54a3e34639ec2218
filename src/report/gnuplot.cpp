#include "report/gnuplot.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "report/escape.hpp"
#include "report/output_file.hpp"

extern char** environ;

namespace memscope::report {
namespace {

constexpr int kChartHeightPixels = 340;
constexpr int kWidthPixels = 1200;
constexpr double kTimeoutSeconds = 60;
constexpr std::string_view kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                         "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f"};

bool executable(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

bool is_reference(const Chart& chart, size_t column) {
  return std::find(chart.reference_lines.begin(), chart.reference_lines.end(), column) !=
         chart.reference_lines.end();
}

bool is_hidden(const Chart& chart, size_t column) {
  return std::find(chart.hidden.begin(), chart.hidden.end(), column) != chart.hidden.end();
}

// The value drawn for each series of a row: cumulative for stacked charts.
std::vector<double> drawn_values(const Chart& chart, const analyze::DownsampledSeries::Row& row) {
  std::vector<double> values(row.values.size());
  const double unit = static_cast<double>(chart.unit_bytes);
  double sum = 0;
  for (size_t i = 0; i < row.values.size(); ++i) {
    const double value = row.values[i] / unit;
    if (chart.stacked) {
      if (!std::isnan(value)) sum += value;
      values[i] = sum;
    } else {
      values[i] = value;
    }
  }
  return values;
}

// A temporary directory removed when this goes away.
class ScratchDir {
 public:
  static Result<ScratchDir> create() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        fmt::format("{}/memscope-plot-XXXXXX", tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
    if (::mkdtemp(pattern.data()) == nullptr) {
      return make_error(fmt::format("cannot create a temporary directory for gnuplot ({}): {}",
                                    pattern, std::strerror(errno)));
    }
    return ScratchDir(pattern);
  }
  ScratchDir(ScratchDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  ScratchDir& operator=(ScratchDir&&) = delete;
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The whole file, or nothing if it cannot be read (iostreams trip GCC 12's warnings).
std::string slurp(const std::string& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buffer[65536];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    out.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return out;
}

std::string first_lines(const std::string& text, size_t max_lines) {
  std::string out;
  size_t start = 0;
  for (size_t n = 0; n < max_lines && start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) {
      if (!out.empty()) out += " | ";
      out.append(text, start, end - start);
      ++n;
    }
    start = end + 1;
  }
  return out;
}

// Runs program with args, stdin from /dev/null, stdout and stderr into log_path.
Result<int> run(const std::string& program, const std::vector<std::string>& args,
                const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv;
  std::vector<std::string> storage = {program};
  storage.insert(storage.end(), args.begin(), args.end());
  for (std::string& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    return make_error(fmt::format("cannot run {}: {}", program, std::strerror(spawned)));
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(kTimeoutSeconds);
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      return make_error(fmt::format("waiting for {}: {}", program, std::strerror(errno)));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return make_error(fmt::format("{} did not finish within {:.0f}s", program, kTimeoutSeconds));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace

Result<std::string> find_gnuplot(const std::string& program) {
  const std::string missing = fmt::format(
      "gnuplot is needed to draw .svg and .png plots but '{}' was not found; install the Debian "
      "package {} (apt-get install {}), or write the plot as .html",
      program, kGnuplotPackage, kGnuplotPackage);
  if (program.find('/') != std::string::npos) {
    if (executable(program)) return program;
    return make_error(missing);
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    const std::string candidate = fmt::format("{}/{}", dir.empty() ? "." : dir, program);
    if (executable(candidate)) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return make_error(missing);
}

std::string gnuplot_data(const Chart& chart) {
  std::string out = "# time";
  for (const std::string& label : chart.labels) {
    out += '\t';
    out += valid_utf8(label);
  }
  out += "\n";
  for (const auto& row : chart.rows) {
    fmt::format_to(std::back_inserter(out), "{:.3f}", row.t_seconds);
    for (double value : drawn_values(chart, row)) {
      if (std::isnan(value)) {
        out += "\t?";
      } else {
        fmt::format_to(std::back_inserter(out), "\t{:.6g}", value);
      }
    }
    out += "\n";
  }
  return out;
}

std::string gnuplot_script(const std::vector<Chart>& charts, const std::string& title,
                           std::string_view format, const std::string& data_dir,
                           const std::string& image) {
  const int height = kChartHeightPixels * static_cast<int>(std::max<size_t>(charts.size(), 1)) + 60;
  std::string out;
  if (format == "png") {
    out += fmt::format(
        "set terminal pngcairo size {},{} font 'DejaVu Sans,10' noenhanced "
        "background rgb 'white'\n",
        kWidthPixels, height);
  } else {
    out += fmt::format(
        "set terminal svg size {},{} dynamic font 'DejaVu Sans,11' noenhanced "
        "background rgb 'white'\n",
        kWidthPixels, height);
  }
  out += fmt::format("set output {}\n", gnuplot_quote(image));
  out += "set datafile missing '?'\nset datafile separator '\\t'\n";
  out += "set grid xtics ytics lc rgb '#dddddd'\nset key outside below center horizontal\n";
  out += "set lmargin 11\nset rmargin 6\n";
  out += "set xlabel 'time since start (s)' offset 0,0.7\nset border 3\nset tics nomirror\n";
  out += fmt::format("set multiplot layout {},1 title {}\n", std::max<size_t>(charts.size(), 1),
                     gnuplot_quote(title));
  for (size_t c = 0; c < charts.size(); ++c) {
    const Chart& chart = charts[c];
    double max = 0;
    for (const auto& row : chart.rows) {
      const std::vector<double> values = drawn_values(chart, row);
      for (size_t i = 0; i < values.size(); ++i) {
        if (!std::isnan(values[i]) && !is_hidden(chart, i)) max = std::max(max, values[i]);
      }
    }
    out += fmt::format("set title {}\n",
                       gnuplot_quote(chart.scale_note.empty()
                                         ? chart.title
                                         : fmt::format("{} ({})", chart.title, chart.scale_note)));
    const double first_t = chart.rows.empty() ? 0 : chart.rows.front().t_seconds;
    const double last_t = chart.rows.empty() ? 0 : chart.rows.back().t_seconds;
    out += fmt::format("set ylabel {}\n", gnuplot_quote(fmt::format("memory ({})", chart.unit)));
    out += fmt::format("set yrange [0:{:.6g}]\n", max > 0 ? max * 1.18 : 1.0);
    out += "unset label\n";
    for (size_t p = 0; p < chart.peaks.size(); ++p) {
      const ChartPeak& peak = chart.peaks[p];
      // Text on the side of the peak with room for it.
      const bool late = peak.t_seconds > first_t + 0.6 * (last_t - first_t);
      out += fmt::format(
          "set label {} {} at {:.3f},{:.6g} {} point pt 7 ps 1.1 lc rgb '#c98a00' offset {},0.9 "
          "front tc rgb '#7a4f00'\n",
          p + 1, gnuplot_quote(peak.text), peak.t_seconds,
          peak.bytes / static_cast<double>(chart.unit_bytes), late ? "right" : "left",
          late ? "-0.8" : "0.8");
    }
    const std::string file = gnuplot_quote(fmt::format("{}/chart{}.dat", data_dir, c));
    std::string plot = "plot ";
    // Stacked areas are drawn largest (the running total) first so the smaller ones show.
    std::vector<size_t> order;
    for (size_t i = 0; i < chart.labels.size(); ++i) {
      const size_t column = chart.stacked ? chart.labels.size() - 1 - i : i;
      if (!is_hidden(chart, column)) order.push_back(column);
    }
    for (size_t n = 0; n < order.size(); ++n) {
      const size_t column = order[n];
      if (n > 0) plot += ", \\\n     ";
      const std::string_view color = kPalette[column % std::size(kPalette)];
      std::string style;
      if (chart.stacked) {
        style = fmt::format("with filledcurves x1 fs solid 0.85 lc rgb '{}'", color);
      } else if (is_reference(chart, column)) {
        style = "with lines dt 2 lw 1.5 lc rgb '#8a96a3'";
      } else {
        style = fmt::format("with lines lw 2 lc rgb '{}'", color);
      }
      plot += fmt::format("{} using 1:{} {} title {}", n == 0 ? file : "''", column + 2, style,
                          gnuplot_quote(chart.labels[column]));
    }
    out += plot + "\n";
  }
  out += "unset multiplot\nset output\n";
  return out;
}

Status render_gnuplot_script(const std::vector<std::pair<std::string, std::string>>& data_files,
                             const GnuplotScript& script, std::string_view format,
                             const std::string& output_path, const std::string& gnuplot_program) {
  if (format != "svg" && format != "png") {
    return make_error(fmt::format("gnuplot draws svg or png, not '{}'", format));
  }
  auto gnuplot = find_gnuplot(gnuplot_program);
  if (!gnuplot) return gnuplot.error();
  // Open the output first: an unwritable path fails before any work.
  auto output = OutputFile::open(output_path);
  if (!output) return output.error();
  auto scratch = ScratchDir::create();
  if (!scratch) return scratch.error();
  const std::string dir = scratch->path();
  for (const auto& [name, contents] : data_files) {
    if (Status written = write_file(fmt::format("{}/{}", dir, name), contents); !written) {
      return written;
    }
  }
  const std::string image = fmt::format("{}/plot.{}", dir, format);
  const std::string script_path = fmt::format("{}/plot.gp", dir);
  if (Status written = write_file(script_path, script(dir, image)); !written) return written;
  const std::string log = fmt::format("{}/gnuplot.log", dir);
  auto exit_code = run(*gnuplot, {script_path}, log);
  if (!exit_code) return exit_code.error();
  const std::string bytes = slurp(image);
  if (*exit_code != 0 || bytes.empty()) {
    return make_error(fmt::format("gnuplot failed (exit status {}) drawing '{}': {}", *exit_code,
                                  output_path, first_lines(slurp(log), 3)));
  }
  output->write(bytes);
  return output->close();
}

Status render_with_gnuplot(const std::vector<Chart>& charts, const std::string& title,
                           std::string_view format, const std::string& output_path,
                           const std::string& gnuplot_program) {
  if (charts.empty())
    return make_error(fmt::format("nothing to plot into '{}': no samples", output_path));
  std::vector<std::pair<std::string, std::string>> files;
  for (size_t c = 0; c < charts.size(); ++c) {
    files.emplace_back(fmt::format("chart{}.dat", c), gnuplot_data(charts[c]));
  }
  return render_gnuplot_script(
      files,
      [&](const std::string& dir, const std::string& image) {
        return gnuplot_script(charts, title, format, dir, image);
      },
      format, output_path, gnuplot_program);
}

}  // namespace memscope::report
