// Python bindings of the snapshot analysis: FragmentationAnalyzer (PyTorch memory snapshots).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "memscope/fragmentation_analyzer.hpp"

namespace memscope::python {

void bind_analysis(py::module_& m) {
  py::class_<DeviceFragmentationSummary>(m, "DeviceFragmentationSummary")
      .def_readonly("device", &DeviceFragmentationSummary::device)
      .def_readonly("reserved_bytes", &DeviceFragmentationSummary::reserved_bytes)
      .def_readonly("allocated_bytes", &DeviceFragmentationSummary::allocated_bytes)
      .def_readonly("requested_bytes", &DeviceFragmentationSummary::requested_bytes)
      .def_readonly("internal_free_bytes", &DeviceFragmentationSummary::internal_free_bytes)
      .def_readonly("external_free_bytes", &DeviceFragmentationSummary::external_free_bytes)
      .def_readonly("largest_free_block_bytes",
                    &DeviceFragmentationSummary::largest_free_block_bytes)
      .def_readonly("fragmentation_ratio", &DeviceFragmentationSummary::fragmentation_ratio)
      .def_readonly("segment_count", &DeviceFragmentationSummary::segment_count)
      .def_readonly("block_count", &DeviceFragmentationSummary::block_count);

  py::class_<FragmentationAnalyzer>(m, "FragmentationAnalyzer")
      .def(py::init([](std::optional<int> device, int top_sites) {
             if (device && *device < 0) {
               throw py::value_error("device must be >= 0 (got " + std::to_string(*device) + ")");
             }
             if (top_sites < 0) {
               throw py::value_error("top_sites must be >= 0 (got " + std::to_string(top_sites) +
                                     ")");
             }
             FragmentationOptions options;
             options.device = device.value_or(-1);
             options.top_sites = static_cast<size_t>(top_sites);
             return FragmentationAnalyzer(options);
           }),
           py::kw_only(), py::arg("device") = py::none(), py::arg("top_sites") = 10)
      .def(
          "analyze",
          [](const FragmentationAnalyzer& self, const std::string& snapshot_path) {
            std::optional<Result<std::vector<DeviceFragmentationSummary>>> result;
            {
              py::gil_scoped_release release;
              result.emplace(self.analyze(snapshot_path));
            }
            if (!*result) throw py::value_error(result->message());
            return std::move(**result);
          },
          py::arg("snapshot_path"))
      .def(
          "report",
          [](const FragmentationAnalyzer& self, const std::string& snapshot_path) {
            std::optional<Result<std::string>> result;
            {
              py::gil_scoped_release release;
              result.emplace(self.report_json(snapshot_path));
            }
            if (!*result) throw py::value_error(result->message());
            return py::module_::import("json").attr("loads")(**result);
          },
          py::arg("snapshot_path"));
}

}  // namespace memscope::python
