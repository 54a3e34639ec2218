#include "net/http_request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace memscope::net {
namespace {

TEST(HttpRequestParse, ReadsRequestLineHeadersAndQuery) {
  const std::string text =
      "GET /metrics?name=x HTTP/1.1\r\nHost: a\r\nAuthorization:  Bearer abc \r\n\r\nrest";
  const ParseResult parsed = parse_request(text, {});
  ASSERT_EQ(parsed.state, ParseState::kComplete) << parsed.error;
  EXPECT_EQ(parsed.request.method, "GET");
  EXPECT_EQ(parsed.request.path, "/metrics");
  EXPECT_EQ(parsed.request.query, "name=x");
  EXPECT_EQ(parsed.request.header("authorization"), "Bearer abc");
  EXPECT_EQ(parsed.request.header("host"), "a");
  EXPECT_TRUE(parsed.request.keep_alive);
  EXPECT_EQ(parsed.consumed, text.size() - 4);
}

TEST(HttpRequestParse, IncompleteUntilTheBlankLineAndTheWholeBody) {
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nHost: a\r\n", {}).state, ParseState::kIncomplete);
  EXPECT_EQ(parse_request("", {}).state, ParseState::kIncomplete);
  const std::string head = "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
  EXPECT_EQ(parse_request(head + "abc", {}).state, ParseState::kIncomplete);
  const ParseResult whole = parse_request(head + "abcde", {});
  ASSERT_EQ(whole.state, ParseState::kComplete);
  EXPECT_EQ(whole.request.body, "abcde");
}

TEST(HttpRequestParse, ConnectionSemanticsFollowTheVersion) {
  EXPECT_FALSE(parse_request("GET / HTTP/1.0\r\n\r\n", {}).request.keep_alive);
  EXPECT_TRUE(
      parse_request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", {}).request.keep_alive);
  EXPECT_FALSE(parse_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", {}).request.keep_alive);
  EXPECT_TRUE(parse_request("GET / HTTP/1.1\n\n", {}).request.keep_alive);  // bare LF accepted
}

TEST(HttpRequestParse, HeadersOverTheLimitAre431EvenBeforeTheyEnd) {
  HttpLimits limits;
  limits.max_header_bytes = 64;
  const std::string big = "GET / HTTP/1.1\r\nX: " + std::string(100, 'a');
  const ParseResult partial = parse_request(big, limits);
  EXPECT_EQ(partial.state, ParseState::kError);
  EXPECT_EQ(partial.error_status, 431);
  EXPECT_EQ(parse_request(big + "\r\n\r\n", limits).error_status, 431);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nX: a\r\n\r\n", limits).state, ParseState::kComplete);
}

TEST(HttpRequestParse, BodiesOverTheLimitAre413) {
  HttpLimits limits;
  limits.max_body_bytes = 10;
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", limits).error_status,
            413);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n", limits)
                .error_status,
            413);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", limits).state,
            ParseState::kComplete);
}

TEST(HttpRequestParse, MalformedInputIsAnErrorWithAStatus) {
  struct Case {
    const char* text;
    int status;
  };
  const Case cases[] = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET /\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\n\r\n", 400},
      {"GET metrics HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / FTP/1.0\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"\x16\x03\x01\x02\x05\x01\x07\x01\xfc\x03\x03\r\n\r\n", 400},  // TLS-like bytes
  };
  for (const Case& c : cases) {
    const ParseResult parsed = parse_request(c.text, {});
    EXPECT_EQ(parsed.state, ParseState::kError) << c.text;
    EXPECT_EQ(parsed.error_status, c.status) << c.text;
    EXPECT_FALSE(parsed.error.empty()) << c.text;
  }
  std::string control = "GET / HTTP/1.1\r\nX: a";
  control += '\x01';
  control += "b\r\n\r\n";
  EXPECT_EQ(parse_request(control, {}).error_status, 400);
}

TEST(HttpRequestParse, ReasonPhrases) {
  EXPECT_STREQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_STREQ(reason_phrase(401), "Unauthorized");
  EXPECT_STREQ(reason_phrase(299), "Unknown");
}

}  // namespace
}  // namespace memscope::net
