#include "clusterenv/image_builder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/container.h"
#include "agent/container_testing.h"
#include "agent/process.h"
#include "util/temp_dir_testing.h"

extern char** environ;

namespace strata::clusterenv {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using agent::testing::RandomSuffix;
using util::testing::ReadFile;
using util::testing::TempDir;
using util::testing::WriteFile;

agent::CommandResult MustRun(const std::vector<std::string>& argv) {
  auto result = agent::RunCommand({argv});
  EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().ToString());
  if (!result) return {};
  return *result;
}

// `podman run` of `argv` in `image`; its output.
std::string RunInImage(const std::string& image, const std::vector<std::string>& argv) {
  std::vector<std::string> args = {"run",       "--rm",
                                   "--network", "none",
                                   "--ulimit",  "nofile=1024:1024",
                                   "--ulimit",  "nproc=1024:1024",
                                   image};
  args.insert(args.end(), argv.begin(), argv.end());
  auto result = MustRun(agent::PodmanCommand(args));
  EXPECT_EQ(result.exit_code, 0) << agent::FormatFailure(result);
  return result.tail;
}

bool HaveExecutable(const char* name) {
  const char* path = std::getenv("PATH");
  return agent::FindExecutable(name, path ? std::optional<std::string>(path) : std::nullopt)
      .has_value();
}

class ImageBuilderTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    // Newest first: children before the images they build on, and the base
    // image last.
    for (auto it = created_images_.rbegin(); it != created_images_.rend(); ++it) {
      MustRun(agent::PodmanCommand({"rmi", "-f", *it}));
    }
    created_images_.clear();
    base_image_.reset();
  }

  void SetUp() override {
    if (!HaveExecutable("podman")) GTEST_SKIP() << "podman is not installed";
    if (base_image_ != nullptr) return;
    // Just sh, echo, cat and sleep, and a fake python3 that records the pip
    // index it sees.
    auto image = std::make_unique<agent::testing::TinyImage>("tiny");
    util::Status built = image->Build(
        {"/bin/sh", "/bin/echo", "/bin/cat", "/bin/sleep"},
        {{"/usr/bin/python3", {"#!/bin/sh\necho \"$PIP_INDEX_URL\" > /pip-index\n", 0755}}});
    ASSERT_TRUE(built) << built.error().ToString();
    base_image_ = std::move(image);
  }

  // A request for a fresh image name under `dir`, logging into `log_`.
  ImageBuildRequest Request(const fs::path& dir, const std::string& tag = "1") {
    ImageBuildRequest request;
    request.spec.base_image = base_image_->reference();
    request.image_ref = "localhost/strata-test/built-" + RandomSuffix() + ":" + tag;
    request.work_dir = dir / "work";
    request.deadline = Clock::now() + 120s;
    request.log = [this](std::string_view line) {
      log_ += std::string(line) + "\n";
      // Each committed step ("--> 1dbeb4bcd3ab"); a failed build leaves
      // its intermediate images behind.
      if (line.starts_with("--> ") && line.find(' ', 4) == std::string_view::npos) {
        created_images_.emplace_back(line.substr(4));
      }
    };
    created_images_.push_back(request.image_ref);
    return request;
  }

  static inline std::unique_ptr<agent::testing::TinyImage> base_image_;
  static inline std::vector<std::string> created_images_;
  std::string log_;
  TempDir dir_;
};

TEST_F(ImageBuilderTest, BuildsWithEnvVarsAndPostBuildCmds) {
  ImageBuildRequest request = Request(dir_.path());
  request.spec.env_vars = {{"GREETING", "hello $world"}};
  request.spec.post_build_cmds = {"echo built > /built", "echo \"$GREETING\" > /greeting"};
  auto result = MakePodmanImageBuilder()->Build(request);
  ASSERT_TRUE(result.has_value()) << result.error().ToString() << "\n" << log_;
  EXPECT_EQ(result->image_id.size(), 64u) << result->image_id;
  EXPECT_TRUE(result->digest.starts_with("sha256:")) << result->digest;
  EXPECT_EQ(result->registry_ref, "");
  EXPECT_NE(log_.find("STEP 2/4: ENV"), std::string::npos) << log_;

  EXPECT_EQ(RunInImage(request.image_ref, {"/bin/cat", "/built"}), "built");
  EXPECT_EQ(RunInImage(request.image_ref, {"/bin/cat", "/greeting"}), "hello $world");
  EXPECT_EQ(RunInImage(request.image_ref, {"/bin/sh", "-c", "echo $GREETING"}), "hello $world");
  // No archive was asked for.
  for (const auto& entry : fs::recursive_directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().string().find(".tar"), std::string::npos) << entry.path();
  }
}

TEST_F(ImageBuilderTest, BuildArgsReachThePipStepWithoutBeingLogged) {
  ImageBuildRequest request = Request(dir_.path());
  request.spec.pip_packages = {"requests"};
  request.build_args = {{"PIP_INDEX_URL", "http://user:secret@127.0.0.1:1/simple"}};
  auto result = MakePodmanImageBuilder()->Build(request);
  ASSERT_TRUE(result.has_value()) << result.error().ToString() << "\n" << log_;
  // The tiny image's fake python3 wrote down the index it was given.
  EXPECT_EQ(RunInImage(request.image_ref, {"/bin/cat", "/pip-index"}),
            "http://user:secret@127.0.0.1:1/simple");
  EXPECT_NE(log_.find("ARG PIP_INDEX_URL"), std::string::npos) << log_;
  EXPECT_EQ(log_.find("secret"), std::string::npos) << log_;
}

TEST_F(ImageBuilderTest, UnchangedRebuildUnderANewTagUsesTheCache) {
  ImageBuildRequest first = Request(dir_.path());
  first.spec.env_vars = {{"A", "1"}};
  first.spec.post_build_cmds = {"echo cached > /cached"};
  auto built = MakePodmanImageBuilder()->Build(first);
  ASSERT_TRUE(built.has_value()) << built.error().ToString() << "\n" << log_;

  log_.clear();
  ImageBuildRequest second = first;
  second.image_ref = "localhost/strata-test/built-" + RandomSuffix() + ":2";
  created_images_.push_back(second.image_ref);
  auto rebuilt = MakePodmanImageBuilder()->Build(second);
  ASSERT_TRUE(rebuilt.has_value()) << rebuilt.error().ToString() << "\n" << log_;
  const size_t run_step = log_.find("RUN [\"/bin/sh\", \"-c\", \"echo cached > /cached\"]");
  ASSERT_NE(run_step, std::string::npos) << log_;
  EXPECT_NE(log_.find("Using cache", run_step), std::string::npos) << log_;
  EXPECT_EQ(RunInImage(second.image_ref, {"/bin/cat", "/cached"}), "cached");
}

TEST_F(ImageBuilderTest, AFailingPostBuildCmdNamesItsStepAndQuotesItsOutput) {
  ImageBuildRequest request = Request(dir_.path());
  request.spec.post_build_cmds = {"echo fine", "echo about to fail; exit 3", "echo never"};
  auto result = MakePodmanImageBuilder()->Build(request);
  ASSERT_FALSE(result.has_value());
  const std::string& message = result.error().message;
  EXPECT_EQ(result.error().kind, util::ErrorKind::kIOError);
  EXPECT_NE(message.find("Building image " + request.image_ref +
                         " at STEP 3/4: RUN [\"/bin/sh\", \"-c\", \"echo about to fail; exit 3\"]"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("\nabout to fail\n"), std::string::npos) << message;
  EXPECT_NE(message.find("exit status 3"), std::string::npos) << message;
  EXPECT_EQ(message.find("never"), std::string::npos) << message;
}

TEST_F(ImageBuilderTest, WritesTheOciArchive) {
  ImageBuildRequest request = Request(dir_.path());
  request.spec.post_build_cmds = {"echo archived > /archived"};
  request.oci_archive = dir_.path() / "images" / "env-1.oci.tar";
  auto result = MakePodmanImageBuilder()->Build(request);
  ASSERT_TRUE(result.has_value()) << result.error().ToString() << "\n" << log_;
  ASSERT_TRUE(fs::is_regular_file(request.oci_archive));
  EXPECT_GT(fs::file_size(request.oci_archive), 0u);
  EXPECT_FALSE(fs::exists(dir_.path() / "images" / "env-1.oci.tar.tmp"));
  auto listing = MustRun({"tar", "-tf", request.oci_archive.string(), "index.json"});
  EXPECT_EQ(listing.exit_code, 0) << agent::FormatFailure(listing);
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// A `docker-registry serve` on 127.0.0.1, killed when the object goes away.
class Registry {
 public:
  explicit Registry(const fs::path& dir) : port_(FreePort()) {
    const fs::path config = dir / "config.yml";
    WriteFile(config, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: " +
                          (dir / "data").string() +
                          "\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n");
    std::vector<std::string> env;
    for (char** entry = environ; *entry != nullptr; ++entry) env.emplace_back(*entry);
    int log = ::open((dir / "registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    auto pid = agent::SpawnInNewGroup({"docker-registry", "serve", config.string()}, env, dir, log);
    ::close(log);
    EXPECT_TRUE(pid.has_value()) << (pid ? "" : pid.error().ToString());
    if (pid) pid_ = *pid;
  }
  ~Registry() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // GET http://<address><path> with curl; "" on failure.
  std::string Get(const std::string& path) const {
    auto result = agent::RunCommand({{"curl", "-sf", "http://" + address() + path}});
    return result && result->exit_code == 0 ? result->tail : "";
  }

  bool WaitUntilUp() const {
    for (int i = 0; i < 200; ++i) {
      auto result = agent::RunCommand({{"curl", "-sf", "http://" + address() + "/v2/"}});
      if (result && result->exit_code == 0) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

TEST_F(ImageBuilderTest, PushesToARegistry) {
  if (!HaveExecutable("docker-registry")) GTEST_SKIP() << "docker-registry is not installed";
  if (!HaveExecutable("curl")) GTEST_SKIP() << "curl is not installed";
  TempDir registry_dir;
  Registry registry(registry_dir.path());
  ASSERT_TRUE(registry.WaitUntilUp()) << ReadFile(registry_dir.path() / "registry.log");

  ImageBuildRequest request = Request(dir_.path(), "7");
  request.spec.post_build_cmds = {"echo pushed > /pushed"};
  request.registry = registry.address();
  request.registry_tls_verify = false;
  auto result = MakePodmanImageBuilder()->Build(request);
  ASSERT_TRUE(result.has_value()) << result.error().ToString() << "\n" << log_;
  // "localhost/strata-test/built-X:7" → "<registry>/strata-test/built-X:7".
  const std::string repository =
      request.image_ref.substr(std::string("localhost/").size(),
                               request.image_ref.rfind(':') - std::string("localhost/").size());
  EXPECT_EQ(result->registry_ref, registry.address() + "/" + repository + ":7");
  const std::string tags = registry.Get("/v2/" + repository + "/tags/list");
  EXPECT_NE(tags.find("\"tags\":[\"7\"]"), std::string::npos) << tags;
}

// Processes whose command line is exactly `argv` and that are not zombies.
int CountProcesses(const std::vector<std::string>& argv) {
  std::string wanted;
  for (const std::string& word : argv) wanted += word + '\0';
  int count = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = ReadFile(entry.path() / "stat");
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos || stat.compare(paren + 2, 1, "Z") == 0) continue;
    if (ReadFile(entry.path() / "cmdline") == wanted) ++count;
  }
  return count;
}

bool WaitUntilGone(const std::vector<std::string>& argv) {
  for (int i = 0; i < 100; ++i) {
    if (CountProcesses(argv) == 0) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// The build containers (buildah's working containers) made from `image`.
std::string BuildContainers(const std::string& image) {
  return MustRun(agent::PodmanCommand({"ps", "-a", "--external", "--filter", "ancestor=" + image,
                                       "--format", "{{.ID}} {{.Names}}"}))
      .tail;
}

TEST_F(ImageBuilderTest, CancelKillsTheBuild) {
  ImageBuildRequest request = Request(dir_.path());
  request.spec.post_build_cmds = {"echo started; exec sleep 987"};
  std::atomic<bool> cancel{false};
  request.cancel = &cancel;
  request.log = [&](std::string_view line) {
    log_ += std::string(line) + "\n";
    if (line == "started") cancel = true;
  };
  const auto start = Clock::now();
  auto result = MakePodmanImageBuilder()->Build(request);
  ASSERT_FALSE(result.has_value());
  EXPECT_LT(Clock::now() - start, 30s);
  EXPECT_EQ(result.error().kind, util::ErrorKind::kUnavailable) << result.error().ToString();
  EXPECT_NE(result.error().message.find("at STEP 2/2: RUN"), std::string::npos)
      << result.error().message;
  EXPECT_NE(result.error().message.find("was cancelled"), std::string::npos)
      << result.error().message;
  EXPECT_TRUE(WaitUntilGone({"sleep", "987"})) << "the RUN step outlived the build";
  EXPECT_EQ(BuildContainers(base_image_->reference()), "") << "the build container was left behind";
}

TEST_F(ImageBuilderTest, DeadlineKillsTheBuild) {
  ImageBuildRequest request = Request(dir_.path());
  request.spec.post_build_cmds = {"exec sleep 988"};
  request.deadline = Clock::now() + 3s;
  const auto start = Clock::now();
  auto result = MakePodmanImageBuilder()->Build(request);
  ASSERT_FALSE(result.has_value());
  EXPECT_LT(Clock::now() - start, 30s);
  EXPECT_EQ(result.error().kind, util::ErrorKind::kTimeout) << result.error().ToString();
  EXPECT_NE(result.error().message.find("did not finish before its deadline"), std::string::npos)
      << result.error().message;
  EXPECT_TRUE(WaitUntilGone({"sleep", "988"})) << "the RUN step outlived the build";
  EXPECT_EQ(BuildContainers(base_image_->reference()), "") << "the build container was left behind";
}

// Builds a real Debian base image (needs root, debootstrap and the Debian
// mirror; about a minute): run with --gtest_also_run_disabled_tests.
TEST(BuildDebianBaseImageTest, DISABLED_BuildsAWorkingPythonImage) {
  TempDir dir;
  BaseImageRequest request;
  request.image_ref = "localhost/strata-test/debian-" + RandomSuffix() + ":latest";
  request.work_dir = dir.path() / "work";
  request.deadline = Clock::now() + 600s;
  const auto start = Clock::now();
  // When each command started, to report where the time goes.
  std::string timeline;
  request.log = [&](std::string_view line) {
    if (!line.starts_with("$ ")) return;
    timeline += std::to_string(std::chrono::duration<double>(Clock::now() - start).count()) +
                " s: " + std::string(line.substr(0, 60)) + "\n";
  };
  auto id = BuildDebianBaseImage(request);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << timeline << "BuildDebianBaseImage took " << seconds << " s\n";
  ASSERT_TRUE(id.has_value()) << id.error().ToString();
  EXPECT_EQ(id->size(), 64u);
  EXPECT_FALSE(fs::exists(request.work_dir / "rootfs"));
  EXPECT_FALSE(fs::exists(request.work_dir / "rootfs.tar"));
  EXPECT_EQ(RunInImage(request.image_ref, {"python3", "-c", "import venv, pip; print('ok')"}),
            "ok");
  MustRun(agent::PodmanCommand({"rmi", "-f", request.image_ref}));
}

TEST(BuildDebianBaseImageTest, RejectsAMissingWorkDir) {
  BaseImageRequest request;
  request.image_ref = "localhost/x:latest";
  auto id = BuildDebianBaseImage(request);
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error().kind, util::ErrorKind::kValueError);
}

TEST(RegistryReferenceTest, DropsTheLocalhostPrefix) {
  EXPECT_EQ(RegistryReference("127.0.0.1:5000", "localhost/strata/ml:3"),
            "127.0.0.1:5000/strata/ml:3");
  EXPECT_EQ(RegistryReference("registry.example.com/team/", "localhost/strata/ml:3"),
            "registry.example.com/team/strata/ml:3");
  EXPECT_EQ(RegistryReference("127.0.0.1:5000", "strata/ml:3"), "127.0.0.1:5000/strata/ml:3");
}

TEST(DefaultDebianMirrorTest, TakesTheFirstUrisOfTheSourcesFile) {
  TempDir dir;
  const fs::path sources = dir.path() / "debian.sources";
  WriteFile(sources,
            "Types: deb\n"
            "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
            "URIs: http://mirror.example.org/debian http://other.example.org/debian\n"
            "Suites: bookworm bookworm-updates\n"
            "Components: main\n"
            "\n"
            "Types: deb\n"
            "URIs: http://mirror.example.org/debian-security\n"
            "Suites: bookworm-security\n");
  EXPECT_EQ(DefaultDebianMirror(sources), "http://mirror.example.org/debian");
}

TEST(DefaultDebianMirrorTest, SkipsCommentsAndContinuationLines) {
  TempDir dir;
  const fs::path sources = dir.path() / "debian.sources";
  WriteFile(sources,
            "# URIs: http://commented.example.org/debian\n"
            "Types: deb\n"
            "Description: a field\n"
            " URIs: http://continuation.example.org/debian\n"
            "uris:   http://lower.example.org/debian\n");
  EXPECT_EQ(DefaultDebianMirror(sources), "http://lower.example.org/debian");
}

TEST(DefaultDebianMirrorTest, FallsBackToDebDebianOrg) {
  TempDir dir;
  EXPECT_EQ(DefaultDebianMirror(dir.path() / "missing.sources"), "http://deb.debian.org/debian");
  WriteFile(dir.path() / "empty.sources", "Types: deb\nURIs:\n");
  EXPECT_EQ(DefaultDebianMirror(dir.path() / "empty.sources"), "http://deb.debian.org/debian");
}

}  // namespace
}  // namespace strata::clusterenv
