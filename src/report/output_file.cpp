#include "report/output_file.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace memscope::report {

Result<OutputFile> OutputFile::open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    return make_error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  }
  return OutputFile(path, file);
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)),
      file_(std::exchange(other.file_, nullptr)),
      error_(other.error_) {}

OutputFile& OutputFile::operator=(OutputFile&& other) noexcept {
  if (this != &other) {
    if (file_ != nullptr) std::fclose(file_);
    path_ = std::move(other.path_);
    file_ = std::exchange(other.file_, nullptr);
    error_ = other.error_;
  }
  return *this;
}

OutputFile::~OutputFile() {
  if (file_ != nullptr) std::fclose(file_);
}

void OutputFile::write(std::string_view text) {
  if (file_ == nullptr || error_ != 0 || text.empty()) return;
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size())
    error_ = errno != 0 ? errno : EIO;
}

Status OutputFile::close() {
  if (file_ == nullptr) return make_error(fmt::format("cannot write '{}': already closed", path_));
  if (std::fflush(file_) != 0 && error_ == 0) error_ = errno;
  if (std::fclose(std::exchange(file_, nullptr)) != 0 && error_ == 0) error_ = errno;
  if (error_ != 0)
    return make_error(fmt::format("cannot write '{}': {}", path_, std::strerror(error_)));
  return {};
}

Status write_file(const std::string& path, std::string_view text) {
  auto file = OutputFile::open(path);
  if (!file) return file.error();
  file->write(text);
  return file->close();
}

}  // namespace memscope::report
