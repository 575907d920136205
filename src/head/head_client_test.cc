// HeadClient against a scripted httplib server on 127.0.0.1: address
// resolution, the mapping of HTTP and connection errors, the headers sent,
// streamed uploads and the streamed log tail.
#include "head/head_client.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "util/scoped_env_testing.h"
#include "util/temp_dir_testing.h"

namespace strata::head {
namespace {

using util::ErrorKind;
using util::Json;
using namespace std::chrono_literals;

using util::testing::ScopedEnv;

TEST(ResolveHeadAddressTest, FlagThenEnvironmentThenDefault) {
  ScopedEnv env("STRATA_ADDRESS", "http://10.0.0.2:9000");
  EXPECT_EQ(*ResolveHeadAddress(std::string("http://10.0.0.1:8000")), "http://10.0.0.1:8000");
  EXPECT_EQ(*ResolveHeadAddress(std::nullopt), "http://10.0.0.2:9000");
  ScopedEnv unset("STRATA_ADDRESS", nullptr);
  EXPECT_EQ(*ResolveHeadAddress(std::nullopt), kDefaultHeadAddress);
  ScopedEnv empty("STRATA_ADDRESS", "");
  EXPECT_EQ(*ResolveHeadAddress(std::nullopt), kDefaultHeadAddress);
}

TEST(ResolveHeadAddressTest, DropsQueryAndTrailingSlashes) {
  EXPECT_EQ(*ResolveHeadAddress(std::string("http://head:8265/?cluster_env=a")),
            "http://head:8265");
  EXPECT_EQ(*ResolveHeadAddress(std::string("http://head:8265//")), "http://head:8265");
  EXPECT_EQ(*ResolveHeadAddress(std::string("http://head")), "http://head");
  EXPECT_EQ(*ResolveHeadAddress(std::string("http://[::1]:8265")), "http://[::1]:8265");
}

TEST(ClusterEnvFromAddressTest, ReadsTheQueryOfTheFlagOrTheEnvironment) {
  ScopedEnv env("STRATA_ADDRESS", "http://head:8265?cluster_env=ml:2");
  EXPECT_EQ(ClusterEnvFromAddress(std::nullopt), "ml:2");
  EXPECT_EQ(ClusterEnvFromAddress(std::string("http://h:1/?a=b&cluster_env=x:1#frag")), "x:1");
  EXPECT_EQ(ClusterEnvFromAddress(std::string("http://h:1")), std::nullopt);
  EXPECT_EQ(ClusterEnvFromAddress(std::string("http://h:1?cluster_env=")), std::nullopt);
  EXPECT_EQ(ClusterEnvFromAddress(std::string("http://h:1?other_cluster_env=y:1")), std::nullopt);
  ScopedEnv unset("STRATA_ADDRESS", nullptr);
  EXPECT_EQ(ClusterEnvFromAddress(std::nullopt), std::nullopt);
}

TEST(ResolveHeadAddressTest, RejectsHttpsAndGarbage) {
  auto https = ResolveHeadAddress(std::string("https://head:8265"));
  ASSERT_FALSE(https);
  EXPECT_EQ(https.error().kind, ErrorKind::kValueError);
  EXPECT_NE(https.error().message.find("TLS to the head is not supported yet"), std::string::npos);
  for (const char* bad : {"", "head:8265", "127.0.0.1", "ftp://head", "http://", "http://:80",
                          "http://head:", "http://head:http", "http://head:0", "http://head:65536",
                          "http://head:8265/api", "http://user@head", "http://he ad", "http://[::1",
                          "ray://head:10001"}) {
    auto parsed = ResolveHeadAddress(std::string(bad));
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().kind, ErrorKind::kValueError) << bad;
  }
  ScopedEnv env("STRATA_ADDRESS", "nonsense");
  auto from_env = ResolveHeadAddress(std::nullopt);
  ASSERT_FALSE(from_env);
  EXPECT_NE(from_env.error().message.find("STRATA_ADDRESS"), std::string::npos);
}

TEST(HeadClientTest, InvalidUrlFailsEveryCall) {
  HeadClient client("https://head", "");
  auto version = client.Version();
  ASSERT_FALSE(version);
  EXPECT_EQ(version.error().kind, ErrorKind::kValueError);
}

// A port nothing listens on: bound, then released.
int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(HeadClientTest, RefusedConnectionIsUnavailable) {
  const std::string url = "http://127.0.0.1:" + std::to_string(UnusedPort());
  HeadClient client(url, "");
  auto jobs = client.ListJobs();
  ASSERT_FALSE(jobs);
  EXPECT_EQ(jobs.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(jobs.error().message.find(url), std::string::npos) << jobs.error().message;
  EXPECT_NE(jobs.error().message.find("strata start --head"), std::string::npos);
}

// A scripted head on 127.0.0.1 that records what it was sent.
class FakeHead : public ::testing::Test {
 protected:
  void SetUp() override {
    // Recorded before the reply is written, so a test sees its request.
    server_.set_post_routing_handler([this](const httplib::Request& req, httplib::Response&) {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(req);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the server runs.
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  httplib::Request LastRequest() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.back();
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<httplib::Request> requests_;
};

void Reply(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "text/plain");
}

TEST_F(FakeHead, HttpErrorsMapToKinds) {
  for (const char* path : {"/api/jobs/missing", "/api/jobs/missing/logs/tail"}) {
    server_.Get(path, [](const httplib::Request&, httplib::Response& res) {
      Reply(res, 404, "Job missing does not exist");
    });
  }
  server_.Get("/api/jobs/locked", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 401, "Unauthorized");
  });
  server_.Get("/api/jobs/bad", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 400, "bad request\n");
  });
  server_.Get("/api/jobs/broken",
              [](const httplib::Request&, httplib::Response& res) { Reply(res, 500, "boom"); });
  HeadClient client(url(), "");

  auto missing = client.GetJob("missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(missing.error().message, "Job missing does not exist");

  auto locked = client.GetJob("locked");
  ASSERT_FALSE(locked);
  EXPECT_EQ(locked.error().kind, ErrorKind::kValueError);
  EXPECT_NE(locked.error().message.find("STRATA_AUTH_TOKEN"), std::string::npos);

  auto bad = client.GetJob("bad");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kValueError);
  EXPECT_EQ(bad.error().message, "bad request");

  auto broken = client.GetJob("broken");
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().kind, ErrorKind::kIOError);
  EXPECT_EQ(broken.error().message, "500 Internal Server Error: boom");

  // A stream refused before it starts carries the head's message too.
  auto tail = client.TailJobLogs("missing", [](std::string_view) { FAIL(); });
  ASSERT_FALSE(tail.ok());
  EXPECT_EQ(tail.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(tail.error().message, "Job missing does not exist");
}

TEST_F(FakeHead, SendsTokenAndUserAgentButNoBrowserHeaders) {
  server_.Post("/api/jobs/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"job_id": "j 1", "submission_id": "j 1"})", "application/json");
  });
  server_.Post(R"(/api/jobs/([^/]+)/stop)", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"stopped": true})", "application/json");
  });
  ScopedEnv token("STRATA_AUTH_TOKEN", "s3cret");
  HeadClient client(url());
  auto id = client.SubmitJob(Json::object({{"entrypoint", "echo hi"}}));
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(*id, "j 1");
  httplib::Request sent = LastRequest();
  EXPECT_EQ(sent.get_header_value("Authorization"), "Bearer s3cret");
  EXPECT_EQ(sent.get_header_value("User-Agent").rfind("strata/", 0), 0u);
  for (const char* header : {"Origin", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Mode"}) {
    EXPECT_FALSE(sent.has_header(header)) << header;
  }
  EXPECT_EQ(*util::ParseJson(sent.body), Json::object({{"entrypoint", "echo hi"}}));

  // Ids are percent-encoded; the server sees them decoded.
  auto stopped = client.StopJob("j 1+x");
  ASSERT_TRUE(stopped) << stopped.error().ToString();
  EXPECT_TRUE(*stopped);
  EXPECT_EQ(LastRequest().path, "/api/jobs/j 1+x/stop");
}

TEST_F(FakeHead, PackagesAndStreamedUploads) {
  std::string stored_blob;
  std::string stored_archive;
  server_.Get("/api/packages/gcs/present.zip",
              [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  server_.Get("/api/packages/gcs/absent.zip", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 404, "Package gcs://absent.zip does not exist");
  });
  server_.Put("/api/packages/gcs/absent.zip",
              [&](const httplib::Request& req, httplib::Response&) { stored_archive = req.body; });
  server_.Put(R"(/api/blobs/([0-9a-f]+))",
              [&](const httplib::Request& req, httplib::Response&) { stored_blob = req.body; });
  server_.Post("/api/packages/manifest", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"uri": "gcs://_strata_pkg_x.zip", "missing": ["ab", "cd"]})",
                    "application/json");
  });
  server_.Post("/api/packages/commit", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"uri": "gcs://_strata_pkg_x.zip"})", "application/json");
  });
  HeadClient client(url(), "");

  EXPECT_TRUE(*client.HasPackage("present.zip"));
  EXPECT_FALSE(*client.HasPackage("absent.zip"));

  util::testing::TempDir dir;
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 % 251);
  util::testing::WriteFile(dir.path() / "big.bin", big);
  ASSERT_TRUE(client.PutBlobFromFile("ab", dir.path() / "big.bin").ok());
  EXPECT_EQ(stored_blob, big);
  EXPECT_EQ(LastRequest().get_header_value("Content-Length"), std::to_string(big.size()));
  ASSERT_TRUE(client.PutPackageArchive("absent.zip", dir.path() / "big.bin").ok());
  EXPECT_EQ(stored_archive, big);
  auto unreadable = client.PutBlobFromFile("ab", dir.path() / "nope");
  ASSERT_FALSE(unreadable.ok());
  EXPECT_EQ(unreadable.error().kind, ErrorKind::kIOError);

  packaging::Manifest manifest;
  auto missing = client.MissingBlobs(manifest);
  ASSERT_TRUE(missing) << missing.error().ToString();
  EXPECT_EQ(*missing, (std::vector<std::string>{"ab", "cd"}));
  EXPECT_TRUE(util::ParseJson(LastRequest().body)->contains("manifest"));
  auto uri = client.CommitPackage(manifest);
  ASSERT_TRUE(uri) << uri.error().ToString();
  EXPECT_EQ(*uri, "gcs://_strata_pkg_x.zip");
}

TEST_F(FakeHead, TailDeliversChunksAsTheyArrive) {
  // The server sends the next chunk only once the client has seen all it
  // sent before, so a client that buffers the response never finishes.
  std::mutex mutex;
  std::condition_variable progressed;
  std::size_t received_bytes = 0;
  const std::vector<std::string> chunks = {"first line\n", "second ", "line\n", "done\n"};
  server_.Get("/api/jobs/j1/logs/tail", [&](const httplib::Request&, httplib::Response& res) {
    auto next = std::make_shared<std::size_t>(0);
    res.set_chunked_content_provider(
        "text/plain", [&, next](std::size_t offset, httplib::DataSink& sink) {
          if (*next == chunks.size()) {
            sink.done();
            return true;
          }
          std::unique_lock<std::mutex> lock(mutex);
          if (!progressed.wait_for(lock, 5s, [&] { return received_bytes >= offset; }))
            return false;
          lock.unlock();
          sink.write(chunks[*next].data(), chunks[*next].size());
          ++*next;
          return true;
        });
  });
  HeadClient client(url(), "");
  std::string received;
  auto ok = client.TailJobLogs("j1", [&](std::string_view chunk) {
    received += chunk;
    std::lock_guard<std::mutex> lock(mutex);
    received_bytes = received.size();
    progressed.notify_all();
  });
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(received, "first line\nsecond line\ndone\n");
}

TEST_F(FakeHead, ClusterEnvCallsUseTheirRoutes) {
  server_.Post("/api/cluster_environments/my env/builds",
               [](const httplib::Request& req, httplib::Response& res) {
                 res.set_content(R"({"name": "my env", "version": 3, "echo": )" + req.body + "}",
                                 "application/json");
               });
  server_.Get("/api/cluster_environments", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(R"({"cluster_environments": [{"name": ")" +
                        req.get_param_value("include_archived") + R"("}]})",
                    "application/json");
  });
  server_.Get("/api/cluster_environments/ml/builds/2",
              [](const httplib::Request&, httplib::Response& res) {
                res.set_content(R"({"ref": "ml:2"})", "application/json");
              });
  server_.Get(
      "/api/cluster_environments/ml/builds/9", [](const httplib::Request&, httplib::Response& res) {
        Reply(res, 404, "cluster environment 'ml' has no build 9; its builds: 1 (SUCCEEDED)");
      });
  server_.Get("/api/cluster_environments/ml/builds/2/logs",
              [](const httplib::Request&, httplib::Response& res) {
                res.set_content(R"({"logs": "STEP 1/2: FROM x\n"})", "application/json");
              });
  server_.Post("/api/cluster_environments/ml/archive",
               [](const httplib::Request&, httplib::Response& res) {
                 res.set_content(R"({"archived": true})", "application/json");
               });
  HeadClient client(url(), "");

  auto build = client.StartClusterEnvBuild("my env", Json::parse(R"({"base_image": "b"})"));
  ASSERT_TRUE(build) << build.error().ToString();
  EXPECT_EQ((*build)["version"], 3);
  EXPECT_EQ((*build)["echo"], Json::parse(R"({"spec": {"base_image": "b"}})"));
  EXPECT_EQ(*client.ListClusterEnvs(true), Json::parse(R"([{"name": "1"}])"));
  EXPECT_EQ(*client.ListClusterEnvs(false), Json::parse(R"([{"name": ""}])"));
  EXPECT_EQ((*client.GetClusterEnvBuild("ml", 2))["ref"], "ml:2");
  auto missing = client.GetClusterEnvBuild("ml", 9);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(missing.error().message,
            "cluster environment 'ml' has no build 9; its builds: 1 (SUCCEEDED)");
  EXPECT_EQ(*client.GetClusterEnvBuildLogs("ml", 2), "STEP 1/2: FROM x\n");
  EXPECT_TRUE(client.ArchiveClusterEnv("ml").ok());
}

}  // namespace
}  // namespace strata::head
