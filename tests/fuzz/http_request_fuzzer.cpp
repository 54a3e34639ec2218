// libFuzzer target: the agent's HTTP request parser reads bytes from anyone who can connect.
// Whatever they are, parsing must end in complete / incomplete / an error status, never a crash,
// and it must be consistent as bytes arrive: a request complete in the whole buffer is
// incomplete in every shorter prefix, complete (the same way) in exactly its own bytes, and an
// incomplete buffer never holds more than the limits allow.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/http_request.hpp"

namespace {

using memscope::net::HttpLimits;
using memscope::net::ParseResult;
using memscope::net::ParseState;

void check(std::string_view buffer, const HttpLimits& limits) {
  const ParseResult result = memscope::net::parse_request(buffer, limits);
  switch (result.state) {
    case ParseState::kError: {
      const int status = result.error_status;
      if (status != 400 && status != 413 && status != 431 && status != 501 && status != 505) {
        __builtin_trap();
      }
      if (result.error.empty() || result.error.find('\n') != std::string_view::npos) {
        __builtin_trap();  // one line saying what is wrong
      }
      return;
    }
    case ParseState::kIncomplete:
      // Waiting for more is only right while the headers fit (the body is bounded by
      // Content-Length, which was checked against max_body_bytes).
      if (buffer.size() > limits.max_header_bytes + limits.max_body_bytes + 8) __builtin_trap();
      return;
    case ParseState::kComplete:
      break;
  }
  const auto& request = result.request;
  if (result.consumed == 0 || result.consumed > buffer.size()) __builtin_trap();
  if (request.method.empty() || request.path.empty() || request.path.front() != '/') {
    __builtin_trap();
  }
  if (request.body.size() > limits.max_body_bytes) __builtin_trap();
  if (request.version != "HTTP/1.1" && request.version != "HTTP/1.0") __builtin_trap();

  // Exactly its own bytes: the same request.
  const ParseResult exact = memscope::net::parse_request(buffer.substr(0, result.consumed), limits);
  if (exact.state != ParseState::kComplete || exact.consumed != result.consumed ||
      exact.request.target != request.target || exact.request.body != request.body ||
      exact.request.headers != request.headers) {
    __builtin_trap();
  }
  // A few shorter prefixes (all of them would make each input quadratic): still incomplete.
  const size_t cuts[] = {result.consumed - 1, result.consumed / 2, result.consumed / 3, 1};
  for (size_t cut : cuts) {
    if (cut >= result.consumed) continue;
    const ParseResult prefix = memscope::net::parse_request(buffer.substr(0, cut), limits);
    if (prefix.state != ParseState::kIncomplete) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view buffer(reinterpret_cast<const char*>(data), size);
  check(buffer, HttpLimits{});  // the agent's own limits
  // Small limits, so that the fuzzer reaches 431 and 413 with short inputs.
  HttpLimits tight;
  tight.max_header_bytes = 96;
  tight.max_body_bytes = 16;
  check(buffer, tight);
  return 0;
}
