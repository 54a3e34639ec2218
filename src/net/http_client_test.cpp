// The client against the real server on loopback (serving on a thread of its own), and against
// sockets that misbehave on purpose: nothing listening, a peer that never answers, answers too
// large, a kept-alive connection the server closed meanwhile.
#include "net/http_client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/http_server.hpp"

namespace memscope::net {
namespace {

class ServedFixture : public ::testing::Test {
 protected:
  void start(ServerOptions options) {
    auto started = HttpServer::start(options);
    ASSERT_TRUE(started) << started.message();
    server_ = std::move(*started);
    server_->handle("/hello", [](const HttpRequest& request) {
      return HttpResponse{200, "text/plain", "hello " + std::string(request.header("x-who")), {}};
    });
    server_->handle("/big", [](const HttpRequest&) {
      return HttpResponse{200, "text/plain", std::string(10000, 'x'), {}};
    });
    server_->handle(
        "/echo",
        [](const HttpRequest& request) {
          return HttpResponse{200, "text/plain", "got " + request.body, {}};
        },
        HttpServer::Access::kToken, HttpServer::Methods::kPost);
    thread_ = std::thread([this] { server_->serve_until(stop_); });
  }
  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  ClientRequest request(const std::string& path) const {
    ClientRequest r;
    r.host = "127.0.0.1";
    r.port = server_->port();
    r.path = path;
    return r;
  }

  std::unique_ptr<HttpServer> server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(ServedFixture, GetsAndPostsWithTheToken) {
  ServerOptions options;
  options.bearer_token = "tok-1";
  start(options);
  ClientRequest get = request("/hello");
  get.bearer_token = "tok-1";
  ClientRequest post = request("/echo");
  post.method = "POST";
  post.body = R"({"a":1})";
  post.bearer_token = "tok-1";
  ClientRequest wrong = request("/hello");
  wrong.bearer_token = "nope";
  const auto responses = fetch_all({get, post, wrong});
  ASSERT_EQ(responses.size(), 3U);
  EXPECT_TRUE(responses[0].ok()) << responses[0].error;
  EXPECT_EQ(responses[0].body, "hello ");
  EXPECT_EQ(responses[1].body, R"(got {"a":1})");
  EXPECT_EQ(responses[2].status, 401);
  EXPECT_FALSE(responses[2].ok());
  // POST only where registered for it, GET and HEAD elsewhere.
  ClientRequest get_post_route = request("/echo");
  get_post_route.bearer_token = "tok-1";
  ClientRequest post_get_route = get;
  post_get_route.method = "POST";
  const auto wrong_methods = fetch_all({get_post_route, post_get_route});
  EXPECT_EQ(wrong_methods[0].status, 405);
  EXPECT_EQ(wrong_methods[1].status, 405);
}

TEST_F(ServedFixture, ManyAtOnceThenReusesTheConnections) {
  ServerOptions options;
  options.max_connections = 300;
  start(options);
  HttpClient client;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 200; ++i) client.submit(request("/hello"));
    std::vector<std::pair<HttpClient::Id, ClientResponse>> done;
    for (int spins = 0; client.in_flight() > 0 && spins < 10000; ++spins) {
      client.run_once(0.1);
      for (auto& item : client.take_finished()) done.push_back(std::move(item));
    }
    ASSERT_EQ(done.size(), 200U);
    for (const auto& [id, response] : done) EXPECT_TRUE(response.ok()) << response.error;
    EXPECT_EQ(client.idle_connections(), 200U);  // round 2 reuses them, opens none
  }
  EXPECT_EQ(server_->stats().connections_accepted, 200U);
}

TEST_F(ServedFixture, RetriesWhenTheServerClosedAKeptAliveConnection) {
  ServerOptions options;
  options.request_timeout_seconds = 0.2;  // idle keep-alive connections closed after this
  start(options);
  HttpClient client;
  for (int i = 0; i < 2; ++i) {
    client.submit(request("/hello"));
    while (client.in_flight() > 0) client.run_once(0.1);
    const auto done = client.take_finished();
    ASSERT_EQ(done.size(), 1U);
    EXPECT_TRUE(done[0].second.ok()) << done[0].second.error;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

TEST_F(ServedFixture, AnswersLargerThanTheLimitFail) {
  start({});
  ClientOptions options;
  options.max_response_bytes = 4096;
  const auto responses = fetch_all({request("/big"), request("/hello")}, options);
  EXPECT_EQ(responses[0].status, 0);
  EXPECT_NE(responses[0].error.find("exceeds the limit"), std::string::npos) << responses[0].error;
  EXPECT_TRUE(responses[1].ok()) << responses[1].error;
}

TEST_F(ServedFixture, OversizedPostIs413) {
  ServerOptions options;
  options.limits.max_body_bytes = 100;
  start(options);
  ClientRequest post = request("/echo");
  post.method = "POST";
  post.body = std::string(101, 'a');
  ClientRequest small = post;
  small.body = "ok";
  const auto responses = fetch_all({post, small});
  EXPECT_EQ(responses[0].status, 413);
  EXPECT_EQ(responses[1].body, "got ok");
}

// A port nobody listens on: bind one, note it, close it.
uint16_t unused_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  return bound ? ntohs(address.sin_port) : 0;
}

TEST(HttpClient, RefusedConnectionIsAnError) {
  ClientRequest r;
  r.host = "127.0.0.1";
  r.port = unused_port();
  const auto responses = fetch_all({r});
  EXPECT_EQ(responses[0].status, 0);
  EXPECT_NE(responses[0].error.find("refused"), std::string::npos) << responses[0].error;
}

TEST(HttpClient, SilentPeerTimesOut) {
  // Listens (the kernel completes the handshake) but never reads nor answers.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ClientRequest r;
  r.host = "127.0.0.1";
  r.port = ntohs(address.sin_port);
  ClientOptions options;
  options.timeout_seconds = 0.3;
  const auto start = std::chrono::steady_clock::now();
  const auto responses = fetch_all({r}, options);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(fd);
  EXPECT_EQ(responses[0].status, 0);
  EXPECT_NE(responses[0].error.find("timed out"), std::string::npos) << responses[0].error;
  EXPECT_LT(took, 10.0);  // a hang guard, not a timing assertion
}

TEST(HttpClient, UnresolvableHostIsAnError) {
  ClientRequest r;
  r.host = "no-such-host.invalid";
  r.port = 80;
  const auto responses = fetch_all({r});
  EXPECT_NE(responses[0].error.find("cannot resolve"), std::string::npos) << responses[0].error;
}

TEST(ParseResponse, ContentLengthAndEof) {
  const std::string whole = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  auto parsed = parse_response(whole, false, 1000);
  ASSERT_EQ(parsed.state, ParsedResponse::State::kComplete);
  EXPECT_EQ(parsed.body, "hello");
  EXPECT_TRUE(parsed.keep_alive);
  EXPECT_EQ(parse_response(whole.substr(0, whole.size() - 1), false, 1000).state,
            ParsedResponse::State::kIncomplete);
  EXPECT_EQ(parse_response(whole.substr(0, whole.size() - 1), true, 1000).state,
            ParsedResponse::State::kError);
  const std::string no_length = "HTTP/1.0 404 Not Found\r\n\r\nabc";
  EXPECT_EQ(parse_response(no_length, false, 1000).state, ParsedResponse::State::kIncomplete);
  parsed = parse_response(no_length, true, 1000);
  EXPECT_EQ(parsed.status, 404);
  EXPECT_EQ(parsed.body, "abc");
  EXPECT_FALSE(parsed.keep_alive);
  EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                              false, 1000)
                   .keep_alive);
}

TEST(ParseResponse, RejectsWhatItCannotRead) {
  for (const char* bad :
       {"SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n"}) {
    EXPECT_EQ(parse_response(bad, false, 1000).state, ParsedResponse::State::kError) << bad;
  }
  EXPECT_EQ(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", false, 1000).state,
            ParsedResponse::State::kError);
  EXPECT_EQ(parse_response(std::string(20000, 'a'), false, 100000).state,
            ParsedResponse::State::kError);
}

}  // namespace
}  // namespace memscope::net
