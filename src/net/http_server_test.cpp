// The server over real loopback sockets: it runs on a thread of its own (serve_until), the test
// talks to it as a client would.
#include "net/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace memscope::net {
namespace {

// A blocking client socket with a generous receive timeout (a hang fails, never blocks ctest).
class Client {
 public:
  explicit Client(uint16_t port, bool ipv6 = false) {
    fd_ = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{20, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (ipv6) {
      sockaddr_in6 address{};
      address.sin6_family = AF_INET6;
      address.sin6_port = htons(port);
      address.sin6_addr = in6addr_loopback;
      connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    } else {
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(port);
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    }
  }
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  void send_text(const std::string& text) const {
    ASSERT_EQ(send(fd_, text.data(), text.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(text.size()));
  }
  // Everything until the server closes (or the timeout).
  std::string read_all() const {
    std::string all;
    char buffer[4096];
    for (;;) {
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      all.append(buffer, static_cast<size_t>(n));
    }
    return all;
  }
  // One response: headers, then Content-Length bytes of body (none for HEAD).
  std::string read_response(bool head = false) {
    for (;;) {
      const size_t end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t at = pending_.find("Content-Length: ");
        if (at != std::string::npos && at < end && !head) length = std::stoul(pending_.substr(at + 16));
        if (pending_.size() >= end + 4 + length) {
          std::string response = pending_.substr(0, end + 4 + length);
          pending_.erase(0, end + 4 + length);
          return response;
        }
      }
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return pending_;
      pending_.append(buffer, static_cast<size_t>(n));
    }
  }
  // Whether anything (data or the server's close) has arrived, without waiting.
  bool has_input() const {
    pollfd descriptor{fd_, POLLIN, 0};
    return poll(&descriptor, 1, 0) > 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

std::string get(const std::string& path, const std::string& extra_headers = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n";
}

int status_of(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 9, "HTTP/1.1 ") != 0) return -1;
  return std::stoi(response.substr(9, 3));
}

std::string body_of(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : response.substr(end + 4);
}

// A server on a loopback port, with /metrics and an open /healthz, served on its own thread.
class ServerFixture : public ::testing::Test {
 protected:
  void start(ServerOptions options) {
    auto started = HttpServer::start(options);
    ASSERT_TRUE(started) << started.message();
    server_ = std::move(*started);
    server_->handle("/metrics", [](const HttpRequest&) {
      return HttpResponse{200, "text/plain; version=0.0.4", "secret_metric 1\n", {}};
    });
    server_->handle(
        "/healthz", [](const HttpRequest&) { return HttpResponse{200, "text/plain", "ok\n", {}}; },
        HttpServer::Access::kOpen);
    thread_ = std::thread([this] { server_->serve_until(stop_); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void TearDown() override { stop(); }
  uint16_t port() const { return server_->port(); }

  std::unique_ptr<HttpServer> server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(ServerFixture, AnswersGetHeadAndKnowsItsPort) {
  start({});
  EXPECT_NE(port(), 0);
  EXPECT_EQ(server_->endpoint(), "127.0.0.1:" + std::to_string(port()));
  Client client(port());
  ASSERT_TRUE(client.connected());
  client.send_text(get("/metrics"));
  const std::string response = client.read_response();
  EXPECT_EQ(status_of(response), 200) << response;
  EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4\r\n"), std::string::npos);
  EXPECT_EQ(body_of(response), "secret_metric 1\n");
  // Keep-alive: a HEAD on the same connection, same length, no body.
  client.send_text("HEAD /metrics HTTP/1.1\r\n\r\n");
  const std::string head = client.read_response(true);
  EXPECT_EQ(status_of(head), 200);
  EXPECT_NE(head.find("Content-Length: 16\r\n"), std::string::npos) << head;
  EXPECT_EQ(body_of(head), "");
  // Connection: close is honoured.
  client.send_text(get("/healthz", "Connection: close\r\n"));
  const std::string last = client.read_all();
  EXPECT_EQ(status_of(last), 200);
  EXPECT_EQ(body_of(last), "ok\n");
}

TEST_F(ServerFixture, PipelinedRequestsAreAnsweredInOrder) {
  start({});
  Client client(port());
  client.send_text(get("/metrics") + get("/healthz") + get("/nope", "Connection: close\r\n"));
  const std::string all = client.read_all();
  const size_t first = all.find("secret_metric");
  const size_t second = all.find("ok\n");
  const size_t third = all.find("404 Not Found");
  ASSERT_NE(first, std::string::npos) << all;
  ASSERT_NE(second, std::string::npos) << all;
  ASSERT_NE(third, std::string::npos) << all;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST_F(ServerFixture, UnknownPathIs404AndOtherMethodsAre405) {
  start({});
  Client missing(port());
  missing.send_text(get("/nope"));
  EXPECT_EQ(status_of(missing.read_response()), 404);
  Client post(port());
  post.send_text("POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
  const std::string response = post.read_response();
  EXPECT_EQ(status_of(response), 405);
  EXPECT_NE(response.find("Allow: GET, HEAD\r\n"), std::string::npos);
}

TEST_F(ServerFixture, TokenGuardsEverythingButOpenPaths) {
  ServerOptions options;
  options.bearer_token = "s3cret-token";
  start(options);
  const std::vector<std::string> refused = {"", "Authorization: Bearer wrong\r\n",
                                            "Authorization: Bearer s3cret-toke\r\n",
                                            "Authorization: Bearer s3cret-token-longer\r\n",
                                            "Authorization: Basic s3cret-token\r\n",
                                            "Authorization: s3cret-token\r\n"};
  for (const std::string& header : refused) {
    for (const char* path : {"/metrics", "/nope"}) {
      Client client(port());
      client.send_text(get(path, header));
      const std::string response = client.read_response();
      EXPECT_EQ(status_of(response), 401) << header << path;
      EXPECT_NE(response.find("WWW-Authenticate: Bearer\r\n"), std::string::npos);
      EXPECT_EQ(response.find("secret_metric"), std::string::npos) << response;
    }
  }
  Client right(port());
  right.send_text(get("/metrics", "Authorization: bearer s3cret-token\r\n"));
  const std::string response = right.read_response();
  EXPECT_EQ(status_of(response), 200);
  EXPECT_EQ(body_of(response), "secret_metric 1\n");
  Client health(port());
  health.send_text(get("/healthz"));
  EXPECT_EQ(body_of(health.read_response()), "ok\n");
  stop();
  EXPECT_EQ(server_->stats().unauthorized, refused.size() * 2);
}

TEST_F(ServerFixture, OversizedHeadersAre431AndBodiesAre413) {
  start({});
  Client headers(port());
  headers.send_text("GET /metrics HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
  EXPECT_EQ(status_of(headers.read_all()), 431);
  Client endless(port());  // never ends its headers
  endless.send_text("GET /metrics HTTP/1.1\r\nX-Big: " + std::string(20000, 'a'));
  EXPECT_EQ(status_of(endless.read_all()), 431);
  Client body(port());
  body.send_text("GET /metrics HTTP/1.1\r\nContent-Length: 70000\r\n\r\n");
  EXPECT_EQ(status_of(body.read_all()), 413);
}

TEST_F(ServerFixture, GarbageIs400AndTheServerCarriesOn) {
  start({});
  {
    Client garbage(port());
    std::string bytes;
    for (int i = 0; i < 3000; ++i) bytes += static_cast<char>((i * 7919) % 251 + 1);
    garbage.send_text(bytes + "\r\n\r\n");
    EXPECT_EQ(status_of(garbage.read_all()), 400);
  }
  {
    Client half(port());  // half a request, then gone
    half.send_text("GET /met");
  }
  Client fine(port());
  fine.send_text(get("/healthz"));
  EXPECT_EQ(status_of(fine.read_response()), 200);
}

TEST_F(ServerFixture, SlowClientIsDroppedWithoutDelayingOthers) {
  ServerOptions options;
  options.request_timeout_seconds = 1.5;
  start(options);
  Client slow(port());
  slow.send_text("GET /metrics HTTP/1.1\r\nHost: slow\r\n");  // never finishes
  Client quick(port());
  quick.send_text(get("/metrics"));
  EXPECT_EQ(status_of(quick.read_response()), 200);
  // The quick client was answered while the slow one was still waiting for its verdict.
  EXPECT_FALSE(slow.has_input());
  const std::string dropped = slow.read_all();
  EXPECT_EQ(status_of(dropped), 408) << dropped;
  EXPECT_NE(dropped.find("Connection: close"), std::string::npos);
  stop();
  EXPECT_GE(server_->stats().timeouts, 1u);
}

TEST_F(ServerFixture, AtTheLimitTheLongestWaitingConnectionMakesRoom) {
  ServerOptions options;
  options.max_connections = 4;
  start(options);
  // Four keep-alive clients hold every slot: each was answered once (so the server has taken
  // it), then begins a request it does not finish -- what a client that wants to lock others
  // out would do.
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<Client>(port()));
    idle.back()->send_text(get("/healthz"));
    ASSERT_EQ(status_of(idle.back()->read_response()), 200);
    idle.back()->send_text("GET /metrics HTTP/1.1\r\n");
  }
  // A newcomer is served: the one that has waited longest (the first) is closed for it.
  Client newcomer(port());
  newcomer.send_text(get("/metrics", "Connection: close\r\n"));
  EXPECT_EQ(status_of(newcomer.read_all()), 200);
  EXPECT_EQ(idle[0]->read_all(), "");  // closed without an answer
  // The others complete their requests and are answered.
  for (size_t i = 1; i < idle.size(); ++i) idle[i]->send_text("Connection: close\r\n\r\n");
  for (size_t i = 1; i < idle.size(); ++i) EXPECT_EQ(status_of(idle[i]->read_all()), 200) << i;
  idle.clear();
  // Many short connections one after another are all answered.
  for (int i = 0; i < 100; ++i) {
    Client client(port());
    client.send_text(get(i % 2 == 0 ? "/metrics" : "/healthz", "Connection: close\r\n"));
    ASSERT_EQ(status_of(client.read_all()), 200) << i;
  }
  stop();
  EXPECT_EQ(server_->stats().connections_evicted, 1u);
  EXPECT_EQ(server_->stats().connections_refused, 0u);
}

TEST_F(ServerFixture, ClientsThatNeverFinishCannotLockOthersOut) {
  ServerOptions options;
  options.max_connections = 8;
  start(options);
  // Far more half-open requests than slots, then a real client: it is still answered.
  std::vector<std::unique_ptr<Client>> hogs;
  for (int i = 0; i < 40; ++i) {
    hogs.push_back(std::make_unique<Client>(port()));
    hogs.back()->send_text("GET /metrics HTTP/1.1\r\nHost: x\r\n");
  }
  Client client(port());
  client.send_text(get("/metrics", "Connection: close\r\n"));
  EXPECT_EQ(status_of(client.read_all()), 200);
  stop();
  EXPECT_GE(server_->stats().connections_evicted, 32u);
}

TEST_F(ServerFixture, ServesIpv6Loopback) {
  ServerOptions options;
  options.listen = "[::1]:0";
  auto started = HttpServer::start(options);
  if (!started) GTEST_SKIP() << "no IPv6 loopback here: " << started.message();
  started->reset();
  start(options);
  EXPECT_EQ(server_->endpoint(), "[::1]:" + std::to_string(port()));
  Client client(port(), /*ipv6=*/true);
  ASSERT_TRUE(client.connected());
  client.send_text(get("/healthz"));
  EXPECT_EQ(status_of(client.read_response()), 200);
}

TEST(HttpServerStart, RefusesABadOrBusyAddress) {
  ServerOptions options;
  options.listen = "127.0.0.1:99999";
  EXPECT_FALSE(HttpServer::start(options));
  options.listen = "127.0.0.1:0";
  auto first = HttpServer::start(options);
  ASSERT_TRUE(first);
  options.listen = (*first)->endpoint();
  auto busy = HttpServer::start(options);
  ASSERT_FALSE(busy);
  EXPECT_NE(busy.message().find("in use"), std::string::npos) << busy.message();
}

TEST(ListenAddress, ParsesIpv4Ipv6AndNames) {
  auto v4 = parse_listen_address("127.0.0.1:9400");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9400);
  auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  for (const char* bad : {"", "9400", ":9400", "::1:9400", "[::1]9400", "[::1]", "host:",
                          "host:65536", "host:-1", "host:12ab", "[]:80"}) {
    EXPECT_FALSE(parse_listen_address(bad)) << bad;
  }
}

TEST(ListenAddress, KnowsLoopbackFromTheRest) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.3.2.1"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("::"));
  EXPECT_FALSE(is_loopback_host("10.1.2.3"));
}

TEST(ConstantTime, ComparesWholeStrings) {
  EXPECT_TRUE(equal_constant_time("abc", "abc"));
  EXPECT_FALSE(equal_constant_time("abd", "abc"));
  EXPECT_FALSE(equal_constant_time("ab", "abc"));
  EXPECT_FALSE(equal_constant_time("abcd", "abc"));
  EXPECT_FALSE(equal_constant_time("", "abc"));
  EXPECT_TRUE(equal_constant_time("", ""));
}

}  // namespace
}  // namespace memscope::net
