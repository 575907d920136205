// FetchToFile against real servers on 127.0.0.1: a scripted Python HTTP
// server (redirects, flaky and stalling routes), `python3 -m http.server`, and
// moto's S3 server with IAM signature checking switched on, so that SigV4
// requests are verified by botocore's own code.
#include "packaging/fetch.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "util/scoped_env_testing.h"

namespace strata::packaging {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using util::ErrorKind;
using util::Status;

// The test servers. "http" serves scripted routes; "moto" starts moto's S3
// server, creates an IAM user, a role session, buckets and objects, then turns
// on signature checking. Each prints one JSON line when ready.
constexpr char kHelperPy[] = R"PY(
import json, signal, sys, threading, time

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB

def serve_http():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    counts = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send_body(self, code, body, headers=()):
            self.send_response(code)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path, _, query = self.path.partition("?")
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            parts = path.strip("/").split("/")
            route = parts[0]
            if route == "payload":
                self.send_body(200, PAYLOAD)
            elif route == "redirect":  # /redirect/N: N hops to /payload
                hops = int(parts[1])
                target = "/payload" if hops <= 1 else "/redirect/%d" % (hops - 1)
                self.send_body(302, b"moved", [("Location", target)])
            elif route == "flaky":  # /flaky/ID?fail=N&code=C: N errors per ID, then PAYLOAD
                with lock:
                    seen = counts.get(parts[1], 0)
                    counts[parts[1]] = seen + 1
                if seen < int(params.get("fail", "1")):
                    headers = []
                    if "retry_after" in params:
                        headers.append(("Retry-After", params["retry_after"]))
                    self.send_body(int(params.get("code", "500")), b"error body", headers)
                else:
                    self.send_body(200, PAYLOAD)
            elif route == "count":  # /count/ID: requests seen for a flaky ID
                with lock:
                    seen = counts.get(parts[1], 0)
                self.send_body(200, str(seen).encode())
            elif route == "stall":  # headers and ?bytes=N (default 1000) bytes, then silence
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(PAYLOAD[:int(params.get("bytes", "1000"))])
                self.wfile.flush()
                time.sleep(60)
            elif route == "truncated":  # promises 1 MiB, sends 1000 bytes, hangs up
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(PAYLOAD[:1000])
                self.wfile.flush()
                self.close_connection = True
            elif route == "bearer":  # a GCS stand-in checking the bearer token
                if self.headers.get("Authorization", "") != "Bearer good-token":
                    self.send_body(401, b"<?xml version='1.0'?><Error><Code>AuthenticationRequired"
                                   b"</Code><Message>bad token</Message></Error>")
                else:
                    self.send_body(200, "/".join(parts[1:]).encode())
            else:
                self.send_body(404, b"no such route")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()

def serve_moto(objects):
    import boto3, requests
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    endpoint = "http://127.0.0.1:%d" % port
    setup = dict(endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="setup", aws_secret_access_key="setup")
    allow_s3 = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="strata")
    iam.put_user_policy(UserName="strata", PolicyName="s3", PolicyDocument=allow_s3)
    key = iam.create_access_key(UserName="strata")["AccessKey"]
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName="reader", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName="reader", PolicyName="s3", PolicyDocument=allow_s3)
    session = boto3.client("sts", **setup).assume_role(
        RoleArn="arn:aws:iam::123456789012:role/reader", RoleSessionName="strata-test")
    s3 = boto3.client("s3", **setup)
    for name, body in objects.items():
        bucket, _, key_name = name.partition("/")
        if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key_name, Body=body.encode())
    # From here on, moto checks every signature against IAM.
    requests.post(endpoint + "/moto-api/reset-auth", data=b"0").raise_for_status()
    creds = session["Credentials"]
    print(json.dumps({"port": port, "key_id": key["AccessKeyId"],
                      "secret": key["SecretAccessKey"],
                      "session_key_id": creds["AccessKeyId"],
                      "session_secret": creds["SecretAccessKey"],
                      "session_token": creds["SessionToken"]}), flush=True)
    signal.pause()

if sys.argv[1] == "http":
    serve_http()
else:
    serve_moto(json.loads(sys.argv[2]))
)PY";

std::string Payload() {
  std::string payload(1 << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i % 256);
  return payload;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::vector<std::string> ListDir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

bool PythonCan(const std::string& imports) {
  std::string command = "python3 -c 'import " + imports + "' >/dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

// A port nobody listens on: bound once by the kernel's choice, then released.
int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

using util::testing::ScopedEnv;

// A server child process: stdout is a pipe read for the readiness line,
// stderr goes to a log file. Killed (SIGTERM, then SIGKILL) on destruction.
class ServerProcess {
 public:
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        ::close(stdout_fd_);
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    ::close(stdout_fd_);
  }

  // Starts argv and waits for its first stdout line; nullptr and *error on failure.
  static std::unique_ptr<ServerProcess> Start(const std::vector<std::string>& argv,
                                              const fs::path& log, std::chrono::seconds timeout,
                                              std::string* line, std::string* error) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      *error = "pipe2 failed";
      return nullptr;
    }
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls until exec. PDEATHSIG: a crashed test
      // binary must not leave servers behind.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(null_fd, 0);
      ::dup2(fds[1], 1);
      ::dup2(log_fd, 2);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    ::close(log_fd);
    ::close(null_fd);
    if (pid < 0) {
      ::close(fds[0]);
      *error = "fork failed";
      return nullptr;
    }
    std::unique_ptr<ServerProcess> process(new ServerProcess(pid, fds[0]));
    if (!process->ReadLine(timeout, line)) {
      *error = argv[0] + " " + argv[1] + " did not become ready; its log:\n" + ReadFile(log);
      return nullptr;
    }
    return process;
  }

 private:
  ServerProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  bool ReadLine(std::chrono::seconds timeout, std::string* line) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string buffer;
    while (buffer.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return false;
      pollfd pfd{stdout_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t got = ::read(stdout_fd_, chunk, sizeof(chunk));
      if (got <= 0) return false;  // the child died
      buffer.append(chunk, static_cast<std::size_t>(got));
    }
    *line = buffer.substr(0, buffer.find('\n'));
    return true;
  }

  pid_t pid_;
  int stdout_fd_;
};

// Options that keep failing tests fast: short backoff, 1 s stall detection.
FetchOptions FastOptions() {
  FetchOptions options;
  options.connect_timeout = 2s;
  options.low_speed_time = 2s;
  options.initial_backoff = 10ms;
  options.max_backoff = 50ms;
  return options;
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

// Shared by all suites: one temp dir and the Python helper script.
class ServerSuite : public ::testing::Test {
 protected:
  // Created on first use; removed at exit, after the servers (static objects
  // constructed later) have been stopped.
  static fs::path SuiteDir() {
    struct Dir {
      fs::path path;
      Dir() {
        char pattern[] = "/tmp/strata-fetch-test-XXXXXX";
        if (mkdtemp(pattern) == nullptr) std::abort();
        path = pattern;
        WriteFile(path / "helper.py", kHelperPy);
      }
      ~Dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
      }
    };
    static const Dir dir;
    return dir.path;
  }

  void SetUp() override {
    test_dir_ = SuiteDir() / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(test_dir_);
    // A proxy from the developer's environment must not intercept 127.0.0.1.
    env_.Set("no_proxy", "127.0.0.1,localhost");
    env_.Set("NO_PROXY", "127.0.0.1,localhost");
    for (const char* name :
         {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
          "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
          "AWS_ENDPOINT_URL_S3", "GS_ACCESS_KEY_ID", "GS_SECRET_ACCESS_KEY",
          "GOOGLE_OAUTH_ACCESS_TOKEN", "STRATA_GCS_ENDPOINT"}) {
      env_.Set(name, std::nullopt);
    }
    // No ~/.aws/credentials of the developer's either.
    env_.Set("HOME", test_dir_.string());
  }

  fs::path test_dir_;
  ScopedEnv env_;
};

// ---------------------------------------------------------------- file://

class FileFetchTest : public ServerSuite {};

TEST_F(FileFetchTest, CopiesTheFileAndReportsProgress) {
  fs::path source = test_dir_ / "source.zip";
  WriteFile(source, Payload());
  std::uint64_t last_received = 0, last_total = 0;
  FetchOptions options;
  options.progress = [&](std::uint64_t received, std::uint64_t total) {
    EXPECT_GE(received, last_received);
    last_received = received;
    last_total = total;
  };
  fs::path dest = test_dir_ / "out" / "pkg.zip";
  Status status = FetchToFile("file://" + source.string(), dest, options);
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(dest), Payload());
  EXPECT_EQ(last_received, 1u << 20);
  EXPECT_EQ(last_total, 1u << 20);
  EXPECT_EQ(ListDir(test_dir_ / "out"), std::vector<std::string>{"pkg.zip"});
}

TEST_F(FileFetchTest, MissingFileIsNotFound) {
  std::string uri = "file://" + (test_dir_ / "missing.zip").string();
  Status status = FetchToFile(uri, test_dir_ / "pkg.zip");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(status.error().message, "Failed to download " + uri + ": " +
                                        (test_dir_ / "missing.zip").string() + " does not exist");
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(FileFetchTest, DirectoryIsRejected) {
  Status status = FetchToFile("file://" + test_dir_.string(), test_dir_ / "pkg.zip");
  ASSERT_FALSE(status.ok());
  EXPECT_CONTAINS(status.error().message, "is not a regular file");
}

TEST_F(FileFetchTest, UnsupportedSchemesAreNamed) {
  for (const char* uri :
       {"azure://container/pkg.zip", "abfss://c@account.dfs.core.windows.net/pkg.zip",
        "gcs://_ray_pkg.zip", "ftp://host/pkg.zip"}) {
    Status status = FetchToFile(uri, test_dir_ / "pkg.zip");
    ASSERT_FALSE(status.ok()) << uri;
    EXPECT_EQ(status.error().kind, ErrorKind::kValueError);
    std::string scheme = std::string(uri).substr(0, std::string(uri).find(':'));
    EXPECT_EQ(status.error().message, "Failed to download " + std::string(uri) + ": the " + scheme +
                                          ":// scheme is not supported (supported: file://, "
                                          "http://, https://, s3://, gs://)");
  }
  Status status = FetchToFile("pkg.zip", test_dir_ / "pkg.zip");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kValueError);
  EXPECT_CONTAINS(status.error().message, "'pkg.zip'");
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(FileFetchTest, BadEndpointSettings) {
  for (const char* endpoint : {"http://", "127.0.0.1:9000", "ftp://host"}) {
    env_.Set("AWS_ENDPOINT_URL", endpoint);
    Status status = FetchToFile("s3://bucket/key.zip", test_dir_ / "pkg.zip");
    ASSERT_FALSE(status.ok()) << endpoint;
    EXPECT_EQ(status.error().kind, ErrorKind::kValueError);
    EXPECT_CONTAINS(
        status.error().message,
        "Failed to download s3://bucket/key.zip: AWS_ENDPOINT_URL=" + std::string(endpoint));
  }
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(FileFetchTest, MalformedCloudUris) {
  for (const char* uri : {"s3://bucket-only", "s3://bucket/", "s3:///key", "gs://bucket"}) {
    Status status = FetchToFile(uri, test_dir_ / "pkg.zip");
    ASSERT_FALSE(status.ok()) << uri;
    EXPECT_EQ(status.error().kind, ErrorKind::kValueError);
    EXPECT_CONTAINS(status.error().message,
                    std::string("Failed to download ") + uri + ": expected");
  }
}

// ---------------------------------------------------------------- http://

class HttpFetchTest : public ServerSuite {
 protected:
  struct Servers {
    std::unique_ptr<ServerProcess> helper, static_files;
    int helper_port = 0, static_port = 0;
    std::string skip_reason;  // python3 missing
    std::string error;        // python3 present but a server failed to start
  };

  static Servers& Get() {
    static Servers servers = [] {
      Servers s;
      if (!PythonCan("http.server, json")) {
        s.skip_reason = "python3 with http.server is not available on PATH";
        return s;
      }
      fs::path dir = SuiteDir();
      std::string line;
      s.helper = ServerProcess::Start({"python3", (dir / "helper.py").string(), "http"},
                                      dir / "http.log", 30s, &line, &s.error);
      if (!s.helper) return s;
      s.helper_port = nlohmann::json::parse(line)["port"].get<int>();
      // The stock server prints "Serving HTTP on 127.0.0.1 port N (...)".
      fs::create_directories(dir / "static" / "sub");
      WriteFile(dir / "static" / "sub" / "pkg.zip", Payload());
      s.static_files =
          ServerProcess::Start({"python3", "-u", "-m", "http.server", "--bind", "127.0.0.1",
                                "--directory", (dir / "static").string(), "0"},
                               dir / "static.log", 30s, &line, &s.error);
      if (!s.static_files) return s;
      auto port_at = line.find(" port ");
      s.static_port = port_at == std::string::npos ? 0 : std::atoi(line.c_str() + port_at + 6);
      return s;
    }();
    return servers;
  }

  void SetUp() override {
    ServerSuite::SetUp();
    if (!Get().skip_reason.empty()) GTEST_SKIP() << Get().skip_reason;
    // Once python3 is known to work, a server that does not start is a failure.
    ASSERT_TRUE(Get().error.empty()) << Get().error;
  }

  static std::string Url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(Get().helper_port) + path;
  }

  static int RequestCount(const std::string& id) {
    fs::path out = SuiteDir() / ("count-" + id);
    Status status = FetchToFile(Url("/count/" + id), out, FastOptions());
    EXPECT_TRUE(status.ok());
    return std::atoi(ReadFile(out).c_str());
  }
};

TEST_F(HttpFetchTest, DownloadsFromPythonHttpServer) {
  fs::path dest = test_dir_ / "pkg.zip";
  std::string uri = "http://127.0.0.1:" + std::to_string(Get().static_port) + "/sub/pkg.zip";
  Status status = FetchToFile(uri, dest, FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(dest), Payload());
  EXPECT_EQ(ListDir(test_dir_), std::vector<std::string>{"pkg.zip"});
}

TEST_F(HttpFetchTest, ReplacesAnExistingFile) {
  fs::path dest = test_dir_ / "pkg.zip";
  WriteFile(dest, "old");
  Status status = FetchToFile(Url("/payload"), dest, FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(dest), Payload());
  EXPECT_EQ(ListDir(test_dir_), std::vector<std::string>{"pkg.zip"});
}

TEST_F(HttpFetchTest, FollowsRedirects) {
  Status status = FetchToFile(Url("/redirect/3"), test_dir_ / "pkg.zip", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(test_dir_ / "pkg.zip"), Payload());
}

TEST_F(HttpFetchTest, TooManyRedirectsFails) {
  FetchOptions options = FastOptions();
  options.max_redirects = 2;
  Status status = FetchToFile(Url("/redirect/5"), test_dir_ / "pkg.zip", options);
  ASSERT_FALSE(status.ok());
  EXPECT_CONTAINS(status.error().message, "Failed to download " + Url("/redirect/5") + ": ");
  EXPECT_CONTAINS(status.error().message, "redirect");
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(HttpFetchTest, RetriesServerErrorsThenSucceeds) {
  Status status =
      FetchToFile(Url("/flaky/e500?fail=2&code=500"), test_dir_ / "pkg.zip", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(test_dir_ / "pkg.zip"), Payload());
  EXPECT_EQ(RequestCount("e500"), 3);
}

TEST_F(HttpFetchTest, RetriesTooManyRequestsHonouringRetryAfter) {
  Status status = FetchToFile(Url("/flaky/e429?fail=1&code=429&retry_after=0"),
                              test_dir_ / "pkg.zip", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(RequestCount("e429"), 2);
}

TEST_F(HttpFetchTest, GivesUpAfterTheRetries) {
  FetchOptions options = FastOptions();
  options.max_retries = 2;
  std::string uri = Url("/flaky/e503?fail=100&code=503");
  Status status = FetchToFile(uri, test_dir_ / "pkg.zip", options);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(
      status.error().message,
      "Failed to download " + uri + ": HTTP 503 Service Unavailable (gave up after 3 attempts)");
  EXPECT_EQ(RequestCount("e503"), 3);
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(HttpFetchTest, NotFoundIsNotRetried) {
  std::string uri = Url("/flaky/e404?fail=100&code=404");
  Status status = FetchToFile(uri, test_dir_ / "pkg.zip", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(status.error().message, "Failed to download " + uri + ": HTTP 404 Not Found");
  EXPECT_EQ(RequestCount("e404"), 1);
  // The error body ("error body") must not have become the package.
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(HttpFetchTest, ForbiddenIsAnIOError) {
  std::string uri = Url("/flaky/e403?fail=100&code=403");
  Status status = FetchToFile(uri, test_dir_ / "pkg.zip", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kIOError);
  EXPECT_EQ(status.error().message, "Failed to download " + uri + ": HTTP 403 Forbidden");
}

TEST_F(HttpFetchTest, PasswordsInUrisAreNotRepeated) {
  std::string uri = "http://user:hunter2@127.0.0.1:" + std::to_string(Get().helper_port) +
                    "/flaky/eauth?fail=100&code=404";
  Status status = FetchToFile(uri, test_dir_ / "pkg.zip", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message.find("hunter2"), std::string::npos) << status.error().message;
  EXPECT_CONTAINS(status.error().message, "http://***@127.0.0.1:");
}

TEST_F(HttpFetchTest, StalledServerTimesOutAndLeavesNothing) {
  FetchOptions options = FastOptions();
  options.low_speed_time = 1s;
  options.max_retries = 1;
  fs::path dest = test_dir_ / "pkg.zip";
  WriteFile(dest, "previous version");
  auto start = std::chrono::steady_clock::now();
  // No body at all: libcurl averages speed over ~5 s, so a burst of bytes
  // before the stall would delay detection by that much.
  Status status = FetchToFile(Url("/stall?bytes=0"), dest, options);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kTimeout);
  EXPECT_CONTAINS(status.error().message, "Failed to download " + Url("/stall?bytes=0") + ": ");
  EXPECT_CONTAINS(status.error().message, "(gave up after 2 attempts)");
  EXPECT_LT(elapsed, 8s);
  // The old file is untouched.
  EXPECT_EQ(ListDir(test_dir_), std::vector<std::string>{"pkg.zip"});
  EXPECT_EQ(ReadFile(dest), "previous version");
}

// Also checks that the 1000 bytes that did arrive do not stay behind.
TEST_F(HttpFetchTest, AttemptTimeout) {
  FetchOptions options = FastOptions();
  options.attempt_timeout = 300ms;
  options.max_retries = 0;
  Status status = FetchToFile(Url("/stall"), test_dir_ / "pkg.zip", options);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kTimeout);
  EXPECT_CONTAINS(status.error().message, "(gave up after 1 attempt)");
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(HttpFetchTest, TruncatedBodyIsRetriedAndLeavesNothing) {
  FetchOptions options = FastOptions();
  options.max_retries = 1;
  Status status = FetchToFile(Url("/truncated"), test_dir_ / "pkg.zip", options);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kUnavailable);
  EXPECT_CONTAINS(status.error().message, "(gave up after 2 attempts)");
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(HttpFetchTest, ConnectionRefusedIsRetriedThenUnavailable) {
  FetchOptions options = FastOptions();
  options.max_retries = 2;
  std::string uri = "http://127.0.0.1:" + std::to_string(UnusedPort()) + "/pkg.zip";
  Status status = FetchToFile(uri, test_dir_ / "pkg.zip", options);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kUnavailable);
  EXPECT_CONTAINS(status.error().message, "Failed to download " + uri + ": ");
  EXPECT_CONTAINS(status.error().message, "(gave up after 3 attempts)");
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(HttpFetchTest, ReportsProgressWithTotal) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
  FetchOptions options = FastOptions();
  options.progress = [&](std::uint64_t received, std::uint64_t total) {
    calls.emplace_back(received, total);
  };
  Status status = FetchToFile(Url("/payload"), test_dir_ / "pkg.zip", options);
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  ASSERT_FALSE(calls.empty());
  for (std::size_t i = 1; i < calls.size(); ++i) EXPECT_GT(calls[i].first, calls[i - 1].first);
  EXPECT_EQ(calls.back(), std::make_pair(std::uint64_t{1} << 20, std::uint64_t{1} << 20));
}

TEST_F(HttpFetchTest, ConcurrentDownloads) {
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      // Two threads per destination: the last complete file wins.
      results[i] =
          FetchToFile(Url("/payload"), test_dir_ / ("pkg" + std::to_string(i % 2)), FastOptions());
    });
  }
  for (auto& thread : threads) thread.join();
  for (const Status& status : results) EXPECT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ListDir(test_dir_), (std::vector<std::string>{"pkg0", "pkg1"}));
  EXPECT_EQ(ReadFile(test_dir_ / "pkg0"), Payload());
  EXPECT_EQ(ReadFile(test_dir_ / "pkg1"), Payload());
}

TEST_F(HttpFetchTest, GcsBearerToken) {
  env_.Set("STRATA_GCS_ENDPOINT", Url("/bearer"));
  env_.Set("GOOGLE_OAUTH_ACCESS_TOKEN", "good-token");
  Status status = FetchToFile("gs://bkt/dir/pkg.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(test_dir_ / "pkg.zip"), "bkt/dir/pkg.zip");

  env_.Set("GOOGLE_OAUTH_ACCESS_TOKEN", "stale-token");
  status = FetchToFile("gs://bkt/dir/pkg.zip", test_dir_ / "other.zip", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message,
            "Failed to download gs://bkt/dir/pkg.zip: HTTP 401 Unauthorized "
            "(AuthenticationRequired: bad token) for bucket 'bkt', object 'dir/pkg.zip'");
}

// ---------------------------------------------------------------- s3:// and gs:// on moto

class S3FetchTest : public ServerSuite {
 protected:
  struct Moto {
    std::unique_ptr<ServerProcess> process;
    std::string endpoint, key_id, secret, session_key_id, session_secret, session_token;
    std::string skip_reason;  // moto or boto3 missing
    std::string error;        // installed but failed to start
  };

  static Moto& Get() {
    static Moto moto = [] {
      Moto m;
      if (!PythonCan("moto, boto3, requests")) {
        m.skip_reason = "python3 with moto, boto3 and requests is not available";
        return m;
      }
      nlohmann::json objects = {
          {"strata-test/pkg.zip", "s3 package"},
          {"strata-test/dir//a b/../c?#.zip", "odd key"},
          {"gcs-bucket/obj/pkg.tar.gz", "gcs package"},
      };
      fs::path dir = SuiteDir();
      std::string line;
      m.process =
          ServerProcess::Start({"python3", (dir / "helper.py").string(), "moto", objects.dump()},
                               dir / "moto.log", 60s, &line, &m.error);
      if (!m.process) return m;
      auto ready = nlohmann::json::parse(line);
      m.endpoint = "http://127.0.0.1:" + std::to_string(ready["port"].get<int>());
      m.key_id = ready["key_id"];
      m.secret = ready["secret"];
      m.session_key_id = ready["session_key_id"];
      m.session_secret = ready["session_secret"];
      m.session_token = ready["session_token"];
      return m;
    }();
    return moto;
  }

  void SetUp() override {
    ServerSuite::SetUp();
    if (!Get().skip_reason.empty()) GTEST_SKIP() << Get().skip_reason;
    ASSERT_TRUE(Get().error.empty()) << Get().error;
    env_.Set("AWS_ENDPOINT_URL", Get().endpoint);
  }

  void UseEnvCredentials() {
    env_.Set("AWS_ACCESS_KEY_ID", Get().key_id);
    env_.Set("AWS_SECRET_ACCESS_KEY", Get().secret);
  }
};

TEST_F(S3FetchTest, EnvironmentCredentials) {
  UseEnvCredentials();
  Status status = FetchToFile("s3://strata-test/pkg.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(test_dir_ / "pkg.zip"), "s3 package");
}

TEST_F(S3FetchTest, SessionToken) {
  env_.Set("AWS_ACCESS_KEY_ID", Get().session_key_id);
  env_.Set("AWS_SECRET_ACCESS_KEY", Get().session_secret);
  env_.Set("AWS_SESSION_TOKEN", Get().session_token);
  Status status = FetchToFile("s3://strata-test/pkg.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(test_dir_ / "pkg.zip"), "s3 package");
}

TEST_F(S3FetchTest, CredentialsFileProfileAndS3Endpoint) {
  fs::path file = test_dir_ / "creds";
  WriteFile(file,
            "[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n"
            "[strata]\naws_access_key_id = " +
                Get().key_id + "\naws_secret_access_key = " + Get().secret + "\n");
  env_.Set("AWS_SHARED_CREDENTIALS_FILE", file.string());
  env_.Set("AWS_PROFILE", "strata");
  env_.Set("AWS_REGION", "eu-west-1");
  // The service-specific endpoint wins over the generic one.
  env_.Set("AWS_ENDPOINT_URL", "http://127.0.0.1:" + std::to_string(UnusedPort()));
  env_.Set("AWS_ENDPOINT_URL_S3", Get().endpoint + "/");
  Status status = FetchToFile("s3://strata-test/pkg.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(test_dir_ / "pkg.zip"), "s3 package");
}

TEST_F(S3FetchTest, HomeCredentialsFile) {
  fs::create_directories(test_dir_ / ".aws");
  WriteFile(test_dir_ / ".aws" / "credentials", "[default]\naws_access_key_id=" + Get().key_id +
                                                    "\naws_secret_access_key=" + Get().secret +
                                                    "\n");
  Status status =
      FetchToFile("s3://strata-test/pkg.zip", test_dir_ / "out" / "pkg.zip", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(test_dir_ / "out" / "pkg.zip"), "s3 package");
}

// Sent verbatim: no dot-segment removal, no slash merging, '?' and '#' are
// part of the key. ('+' and non-ASCII keys are covered by the botocore signer
// vector only: moto 5.2 itself rejects boto3's signatures for them.)
TEST_F(S3FetchTest, KeyWithCharactersThatNeedEncoding) {
  UseEnvCredentials();
  Status status =
      FetchToFile("s3://strata-test/dir//a b/../c?#.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(test_dir_ / "pkg.zip"), "odd key");
}

TEST_F(S3FetchTest, MissingKeyIsNotFoundAndNamesBucketAndKey) {
  UseEnvCredentials();
  Status status = FetchToFile("s3://strata-test/missing.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(status.error().message,
            "Failed to download s3://strata-test/missing.zip: HTTP 404 Not Found (NoSuchKey: The "
            "specified key does not exist.) for bucket 'strata-test', key 'missing.zip'");
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(S3FetchTest, MissingBucket) {
  UseEnvCredentials();
  Status status = FetchToFile("s3://no-such-bucket/pkg.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kNotFound);
  EXPECT_CONTAINS(status.error().message, "NoSuchBucket");
  EXPECT_CONTAINS(status.error().message, "for bucket 'no-such-bucket', key 'pkg.zip'");
}

TEST_F(S3FetchTest, WrongSecretIsForbidden) {
  env_.Set("AWS_ACCESS_KEY_ID", Get().key_id);
  env_.Set("AWS_SECRET_ACCESS_KEY", "not-the-secret");
  Status status = FetchToFile("s3://strata-test/pkg.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kIOError);
  EXPECT_CONTAINS(status.error().message,
                  "Failed to download s3://strata-test/pkg.zip: HTTP 403 Forbidden "
                  "(SignatureDoesNotMatch: ");
  EXPECT_CONTAINS(status.error().message, "for bucket 'strata-test', key 'pkg.zip'");
  EXPECT_TRUE(ListDir(test_dir_).empty());
}

TEST_F(S3FetchTest, AnonymousRequestExplainsTheMissingCredentials) {
  Status status = FetchToFile("s3://strata-test/pkg.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_CONTAINS(status.error().message, "for bucket 'strata-test', key 'pkg.zip'");
  EXPECT_CONTAINS(status.error().message, "no AWS credentials were found");
}

TEST_F(S3FetchTest, UnknownProfileIsAnError) {
  env_.Set("AWS_PROFILE", "nope");
  Status status = FetchToFile("s3://strata-test/pkg.zip", test_dir_ / "pkg.zip", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kValueError);
  EXPECT_CONTAINS(status.error().message,
                  "Failed to download s3://strata-test/pkg.zip: AWS profile 'nope'");
}

TEST_F(S3FetchTest, GcsWithHmacKeys) {
  env_.Set("STRATA_GCS_ENDPOINT", Get().endpoint);
  env_.Set("GS_ACCESS_KEY_ID", Get().key_id);
  env_.Set("GS_SECRET_ACCESS_KEY", Get().secret);
  Status status =
      FetchToFile("gs://gcs-bucket/obj/pkg.tar.gz", test_dir_ / "pkg.tar.gz", FastOptions());
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  EXPECT_EQ(ReadFile(test_dir_ / "pkg.tar.gz"), "gcs package");

  status = FetchToFile("gs://gcs-bucket/obj/missing.tar.gz", test_dir_ / "x.tar.gz", FastOptions());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kNotFound);
  EXPECT_CONTAINS(status.error().message, "for bucket 'gcs-bucket', object 'obj/missing.tar.gz'");
}

}  // namespace
}  // namespace strata::packaging
