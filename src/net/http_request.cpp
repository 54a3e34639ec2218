#include "net/http_request.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "net/text.hpp"

namespace memscope::net {
namespace {

// RFC 9110 token characters (method and header names).
bool is_token_char(char c) {
  if (std::isalnum(static_cast<unsigned char>(c)) != 0) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_token_char);
}


// Whether a comma-separated header value lists `word` (case-insensitive), e.g. Connection.
bool lists(std::string_view value, std::string_view word) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (lower(trim(value.substr(0, comma))) == word) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

ParseResult fail(int status, std::string message) {
  ParseResult result;
  result.state = ParseState::kError;
  result.error_status = status;
  result.error = std::move(message);
  return result;
}

// Request line: METHOD SP request-target SP HTTP-version.
bool parse_request_line(std::string_view line, HttpRequest& request, ParseResult& error) {
  const size_t first = line.find(' ');
  const size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos) {
    error = fail(400, "malformed request line");
    return false;
  }
  const std::string_view method = line.substr(0, first);
  const std::string_view target = line.substr(first + 1, second - first - 1);
  const std::string_view version = line.substr(second + 1);
  if (!is_token(method)) {
    error = fail(400, "malformed method");
    return false;
  }
  if (target.empty() || target.front() != '/' ||
      std::any_of(target.begin(), target.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f;
      })) {
    error = fail(400, "malformed request target");
    return false;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    error = version.substr(0, 5) == "HTTP/" ? fail(505, "only HTTP/1.0 and HTTP/1.1 are served")
                                            : fail(400, "malformed HTTP version");
    return false;
  }
  request.method = method;
  request.target = target;
  const size_t question = target.find('?');
  request.path = target.substr(0, question);
  if (question != std::string_view::npos) request.query = target.substr(question + 1);
  request.version = version;
  return true;
}

}  // namespace

std::string_view HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

ParseResult parse_request(std::string_view buffer, const HttpLimits& limits) {
  size_t start = 0;
  while (start < buffer.size() && (buffer[start] == '\r' || buffer[start] == '\n')) ++start;
  if (start > 4) return fail(400, "too many empty lines before the request");

  // Lines end in "\n", with an optional "\r" before it; an empty line ends the headers.
  std::vector<std::string_view> lines;
  size_t at = start;
  size_t header_end = std::string_view::npos;
  while (at < buffer.size()) {
    const size_t newline = buffer.find('\n', at);
    if (newline == std::string_view::npos) break;
    std::string_view line = buffer.substr(at, newline - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    at = newline + 1;
    if (at - start > limits.max_header_bytes) break;
    if (line.empty()) {
      header_end = at;
      break;
    }
    lines.push_back(line);
  }
  if (header_end == std::string_view::npos) {
    if (buffer.size() - start > limits.max_header_bytes) {
      return fail(431, fmt::format("request line and headers exceed {} bytes",
                                   limits.max_header_bytes));
    }
    return {};
  }

  ParseResult result;
  HttpRequest& request = result.request;
  if (!parse_request_line(lines.front(), request, result)) return result;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') return fail(400, "folded header line");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      return fail(400, "malformed header line");
    }
    const std::string_view value = trim(line.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), [](char c) {
          const auto byte = static_cast<unsigned char>(c);
          return (byte < 0x20 && c != '\t') || byte == 0x7f;
        })) {
      return fail(400, "control character in a header value");
    }
    request.headers.emplace_back(lower(line.substr(0, colon)), value);
  }

  if (!request.header("transfer-encoding").empty()) {
    return fail(501, "Transfer-Encoding is not supported; send Content-Length");
  }
  uint64_t content_length = 0;
  bool seen_length = false;
  for (const auto& [name, value] : request.headers) {
    if (name != "content-length") continue;
    if (value.empty() || value.size() > 18 ||
        !std::all_of(value.begin(), value.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
      return fail(400, "malformed Content-Length");
    }
    const uint64_t length = std::stoull(value);
    if (seen_length && length != content_length) return fail(400, "conflicting Content-Length");
    content_length = length;
    seen_length = true;
  }
  if (content_length > limits.max_body_bytes) {
    return fail(413, fmt::format("body of {} bytes exceeds {} bytes", content_length,
                                 limits.max_body_bytes));
  }
  if (buffer.size() - header_end < content_length) return {};
  request.body = buffer.substr(header_end, static_cast<size_t>(content_length));

  const std::string_view connection = request.header("connection");
  request.keep_alive = request.version == "HTTP/1.1" ? !lists(connection, "close")
                                                     : lists(connection, "keep-alive");
  result.state = ParseState::kComplete;
  result.consumed = header_end + static_cast<size_t>(content_length);
  return result;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace memscope::net
