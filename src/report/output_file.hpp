// A file being written, with errors that name the file and say what went wrong.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace memscope::report {

class OutputFile {
 public:
  // Opens (creates or truncates) path for writing.
  static Result<OutputFile> open(const std::string& path);
  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();

  void write(std::string_view text);
  // Flushes and closes; reports the first write error (disk full, ...).
  Status close();

 private:
  OutputFile(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}

  std::string path_;
  std::FILE* file_ = nullptr;
  int error_ = 0;
};

// Writes the whole text to path.
Status write_file(const std::string& path, std::string_view text);

}  // namespace memscope::report
