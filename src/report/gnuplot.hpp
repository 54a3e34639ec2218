// Static chart images (SVG, PNG) drawn by gnuplot (Debian package gnuplot-nox), run as a child
// process on a script and data files in a temporary directory.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "report/charts.hpp"

namespace memscope::report {

inline constexpr std::string_view kGnuplotPackage = "gnuplot-nox";

// The program to run: `program` if it has a slash, else looked up on PATH. The error names the
// Debian package to install.
Result<std::string> find_gnuplot(const std::string& program = "gnuplot");

// The gnuplot script drawing `charts` one under the other into `image` ("svg" or "png"); data
// files are data_dir/chart<N>.dat as written by gnuplot_data().
std::string gnuplot_script(const std::vector<Chart>& charts, const std::string& title,
                           std::string_view format, const std::string& data_dir,
                           const std::string& image);
// One chart's data: time, then each series in the chart's unit ("?" where missing; cumulative
// for stacked charts).
std::string gnuplot_data(const Chart& chart);

// The script to run, given the directory holding the data files and the image to draw.
using GnuplotScript =
    std::function<std::string(const std::string& data_dir, const std::string& image)>;
// Writes `data_files` (name, contents) into a temporary directory, runs gnuplot on the script
// and copies the image it drew ("svg" or "png") to output_path.
Status render_gnuplot_script(const std::vector<std::pair<std::string, std::string>>& data_files,
                             const GnuplotScript& script, std::string_view format,
                             const std::string& output_path,
                             const std::string& gnuplot_program = "gnuplot");

// Draws the charts into output_path as "svg" or "png".
Status render_with_gnuplot(const std::vector<Chart>& charts, const std::string& title,
                           std::string_view format, const std::string& output_path,
                           const std::string& gnuplot_program = "gnuplot");

}  // namespace memscope::report
