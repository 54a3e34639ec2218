// HTTP/1.1 requests as the agent's server reads them: a pure parser over the bytes received so
// far, bounded (request line + headers, body), so a client can never make it buffer more.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memscope::net {

struct HttpLimits {
  size_t max_header_bytes = 8 * 1024;  // request line + headers + the blank line: else 431
  size_t max_body_bytes = 64 * 1024;   // Content-Length above this: 413
};

struct HttpRequest {
  std::string method;   // "GET"
  std::string target;   // "/metrics?x=1", as sent
  std::string path;     // "/metrics"
  std::string query;    // "x=1"
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  std::string body;
  bool keep_alive = true;  // what the client asked for (version default, Connection header)

  // The first header of that (lower-case) name; empty when absent.
  std::string_view header(std::string_view lower_name) const;
};

enum class ParseState { kIncomplete, kComplete, kError };

struct ParseResult {
  ParseState state = ParseState::kIncomplete;
  size_t consumed = 0;    // kComplete: bytes of the buffer this request used
  int error_status = 0;   // kError: the status to answer with (400, 413, 431, 501, 505)
  std::string error;      // kError: one line saying what is wrong
  HttpRequest request;    // kComplete
};

// Parses the request at the start of `buffer` (leading empty lines are skipped, as RFC 9112
// allows). kIncomplete: more bytes are needed, and the buffer is still within the limits.
ParseResult parse_request(std::string_view buffer, const HttpLimits& limits);

// "Not Found" for 404; "Unknown" for a status it does not know.
const char* reason_phrase(int status);

}  // namespace memscope::net
