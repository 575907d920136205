#include "packaging/upload.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "model/runtime_env.h"
#include "packaging/blob_store.h"
#include "packaging/package_sink.h"
#include "util/temp_dir_testing.h"

namespace strata::packaging {
namespace {

namespace fs = std::filesystem;
using util::Json;

// Forwards to a real store and records every call, so tests can check the
// exchange an upload performs. `fail_put` makes PutBlobFromFile fail.
class RecordingSink : public PackageSink {
 public:
  explicit RecordingSink(BlobStore& store) : real_(store) {}
  util::Result<bool> HasPackage(std::string_view name) override {
    calls.push_back("HasPackage " + std::string(name));
    return real_.HasPackage(name);
  }
  util::Status PutPackageArchive(std::string_view name, const fs::path& archive) override {
    calls.push_back("PutPackageArchive " + std::string(name));
    return real_.PutPackageArchive(name, archive);
  }
  util::Result<std::vector<std::string>> MissingBlobs(const Manifest& manifest) override {
    calls.push_back("MissingBlobs");
    return real_.MissingBlobs(manifest);
  }
  util::Status PutBlobFromFile(std::string_view sha256, const fs::path& source) override {
    calls.push_back("PutBlobFromFile");
    if (fail_put) return *fail_put;
    return real_.PutBlobFromFile(sha256, source);
  }
  util::Result<std::string> CommitPackage(const Manifest& manifest) override {
    calls.push_back("CommitPackage");
    return real_.CommitPackage(manifest);
  }

  std::vector<std::string> calls;
  std::optional<util::Error> fail_put;

 private:
  BlobStoreSink real_;
};

class UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = BlobStore::Open(dir_ / "store");
    ASSERT_TRUE(store) << store.error().message;
    store_.emplace(std::move(store).value());
    sink_.emplace(*store_);
  }
  // A directory of `count` files f00..f<count-1> of distinct sizes.
  fs::path MakeDir(const std::string& name, int count) {
    for (int i = 0; i < count; ++i) {
      std::string file = (i < 10 ? "f0" : "f") + std::to_string(i) + ".py";
      util::testing::WriteFile(dir_ / name / file, std::string(10 + i, 'a' + i % 26));
    }
    return dir_ / name;
  }
  util::Result<std::string> UploadDir(const fs::path& dir, UploadStats* stats,
                                      const UploadProgress& on_progress = {}) {
    return UploadLocalPath(dir, TopLevel::kContentsAtRoot, {}, *sink_, stats, on_progress);
  }
  static std::string PackageName(const std::string& uri) {
    EXPECT_TRUE(uri.starts_with("gcs://")) << uri;
    return uri.substr(std::string("gcs://").size());
  }

  util::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
  std::optional<BlobStore> store_;
  std::optional<BlobStoreSink> sink_;
};

TEST_F(UploadTest, LocalPathsBecomeUrisOfStoredPackages) {
  util::testing::WriteFile(dir_ / "work" / "main.py", "print('hi')\n");
  util::testing::WriteFile(dir_ / "work" / "skip.log", "excluded\n");
  util::testing::WriteFile(dir_ / "mymod" / "__init__.py", "X = 1\n");
  util::testing::WriteFile(dir_ / "dist" / "tool-1.0-py3-none-any.whl", "wheel bytes");
  util::testing::WriteFile(dir_ / "dist" / "extra.zip", "zip bytes");
  auto env = model::RuntimeEnv::Parse(Json{
      {"working_dir", (dir_ / "work").string()},
      {"py_modules",
       {(dir_ / "mymod").string(), (dir_ / "dist" / "tool-1.0-py3-none-any.whl").string(),
        (dir_ / "dist" / "extra.zip").string(), "s3://bucket/remote.zip"}},
      {"excludes", {"*.log"}},
  });
  ASSERT_TRUE(env) << env.error().message;
  UploadStats stats;
  util::Status ok = UploadLocalPaths(*env, *sink_, &stats);
  ASSERT_TRUE(ok.ok()) << ok.error().message;

  std::string working_dir = env->WorkingDir();
  EXPECT_TRUE(working_dir.starts_with("gcs://_strata_pkg_")) << working_dir;
  EXPECT_TRUE(working_dir.ends_with(".zip")) << working_dir;
  std::vector<std::string> modules = env->PyModules();
  ASSERT_EQ(modules.size(), 4u);
  EXPECT_TRUE(modules[0].starts_with("gcs://_strata_pkg_")) << modules[0];
  EXPECT_NE(modules[0], working_dir);
  EXPECT_EQ(modules[1], "gcs://tool-1.0-py3-none-any.whl");
  auto zip_digest = Sha256File(dir_ / "dist" / "extra.zip");
  ASSERT_TRUE(zip_digest);
  EXPECT_EQ(modules[2], "gcs://_strata_pkg_" + zip_digest->substr(0, 32) + ".zip");
  EXPECT_EQ(modules[3], "s3://bucket/remote.zip");

  for (const std::string& uri : {working_dir, modules[0], modules[1], modules[2]}) {
    EXPECT_TRUE(store_->HasPackage(PackageName(uri))) << uri;
  }
  // Archives and wheels are stored as they are.
  EXPECT_EQ(util::testing::ReadFile(*store_->PackagePath(PackageName(modules[1]))), "wheel bytes");
  EXPECT_EQ(util::testing::ReadFile(*store_->PackagePath(PackageName(modules[2]))), "zip bytes");
  EXPECT_EQ(stats.packages, 4u);
  // main.py, __init__.py, the wheel and the zip; skip.log is excluded.
  EXPECT_EQ(stats.files_sent, 4u);
  EXPECT_EQ(stats.files_skipped, 0u);
  EXPECT_EQ(stats.bytes_sent, 12u + 6u + 11u + 9u);
  // What reaches a node must validate as URIs.
  EXPECT_TRUE(env->Serialize()) << env->Serialize().error().message;
}

TEST_F(UploadTest, SecondUploadSendsNothing) {
  fs::path dir = MakeDir("project", 12);
  UploadStats first;
  auto uri = UploadDir(dir, &first);
  ASSERT_TRUE(uri) << uri.error().message;
  EXPECT_EQ(first.files_sent, 12u);
  EXPECT_EQ(first.files_skipped, 0u);

  UploadStats second;
  auto again = UploadDir(dir, &second);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *uri);
  EXPECT_EQ(second.files_sent, 0u);
  EXPECT_EQ(second.files_skipped, 12u);
  EXPECT_EQ(second.bytes_sent, 0u);
  EXPECT_EQ(second.bytes_skipped, first.bytes_sent);
  EXPECT_EQ(second.packages, 1u);
}

TEST_F(UploadTest, EditingOneFileSendsOnlyThatFile) {
  fs::path dir = MakeDir("project", 20);
  UploadStats first;
  auto uri = UploadDir(dir, &first);
  ASSERT_TRUE(uri) << uri.error().message;
  ASSERT_EQ(first.files_sent, 20u);

  const std::string edited(1234, 'z');
  util::testing::WriteFile(dir / "f07.py", edited);
  UploadStats second;
  auto after = UploadDir(dir, &second);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_NE(*after, *uri);
  EXPECT_EQ(second.files_sent, 1u);
  EXPECT_EQ(second.bytes_sent, edited.size());
  EXPECT_EQ(second.files_skipped, 19u);
  EXPECT_EQ(second.bytes_skipped, first.bytes_sent - (10 + 7));
  EXPECT_TRUE(store_->HasPackage(PackageName(*after)));
}

TEST_F(UploadTest, ProgressIsReportedOncePerFileWithGrowingTotals) {
  fs::path dir = MakeDir("project", 8);
  util::testing::WriteFile(dir_ / "mod" / "__init__.py", "");
  util::testing::WriteFile(dir_ / "mod" / "core.py", "core = True\n");
  auto env = model::RuntimeEnv::Parse(
      Json{{"working_dir", dir.string()}, {"py_modules", {(dir_ / "mod").string()}}});
  ASSERT_TRUE(env) << env.error().message;
  // Half of the working_dir is already stored, so both kinds of file occur.
  ASSERT_TRUE(UploadDir(MakeDir("half", 4), nullptr));

  std::vector<UploadStats> seen;
  UploadStats stats;
  util::Status ok =
      UploadLocalPaths(*env, *sink_, &stats, [&](const UploadStats& s) { seen.push_back(s); });
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  ASSERT_EQ(seen.size(), 10u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].files_sent + seen[i].files_skipped, i + 1);
    if (i == 0) continue;
    EXPECT_GE(seen[i].bytes_sent, seen[i - 1].bytes_sent);
    EXPECT_GE(seen[i].bytes_skipped, seen[i - 1].bytes_skipped);
  }
  EXPECT_EQ(seen.back().files_skipped, 4u);
  EXPECT_EQ(seen.back().files_sent, 6u);
  EXPECT_EQ(seen.back().bytes_sent, stats.bytes_sent);

  // Without stats from the caller the callback still sees running totals.
  seen.clear();
  auto uri =
      UploadDir(MakeDir("other", 3), nullptr, [&](const UploadStats& s) { seen.push_back(s); });
  ASSERT_TRUE(uri) << uri.error().message;
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].files_sent + seen[2].files_skipped, 3u);
}

TEST_F(UploadTest, SinkSeesMissingBlobsThenPutsThenCommit) {
  fs::path dir = MakeDir("project", 3);
  util::testing::WriteFile(dir / "copy.py", std::string(10, 'a'));  // same bytes as f00.py
  RecordingSink sink(*store_);
  auto uri = UploadLocalPath(dir, TopLevel::kContentsAtRoot, {}, sink);
  ASSERT_TRUE(uri) << uri.error().message;
  // Identical contents are sent once.
  EXPECT_EQ(sink.calls,
            (std::vector<std::string>{"MissingBlobs", "PutBlobFromFile", "PutBlobFromFile",
                                      "PutBlobFromFile", "CommitPackage"}));
  EXPECT_TRUE(store_->HasPackage(PackageName(*uri)));

  sink.calls.clear();
  ASSERT_TRUE(UploadLocalPath(dir, TopLevel::kContentsAtRoot, {}, sink));
  EXPECT_EQ(sink.calls, (std::vector<std::string>{"MissingBlobs", "CommitPackage"}));

  sink.calls.clear();
  util::testing::WriteFile(dir_ / "w" / "pkg-2.0-py3-none-any.whl", "wheel");
  ASSERT_TRUE(
      UploadLocalPath(dir_ / "w" / "pkg-2.0-py3-none-any.whl", TopLevel::kDirectoryName, {}, sink));
  ASSERT_TRUE(
      UploadLocalPath(dir_ / "w" / "pkg-2.0-py3-none-any.whl", TopLevel::kDirectoryName, {}, sink));
  EXPECT_EQ(sink.calls, (std::vector<std::string>{"HasPackage pkg-2.0-py3-none-any.whl",
                                                  "PutPackageArchive pkg-2.0-py3-none-any.whl",
                                                  "HasPackage pkg-2.0-py3-none-any.whl"}));
}

TEST_F(UploadTest, SinkErrorsPropagateAndLeaveTheEnvUnchanged) {
  fs::path work = MakeDir("work", 2);
  fs::path mod = dir_ / "mod";
  util::testing::WriteFile(mod / "__init__.py", "only in mod\n");
  auto env = model::RuntimeEnv::Parse(
      Json{{"working_dir", work.string()}, {"py_modules", {mod.string()}}});
  ASSERT_TRUE(env) << env.error().message;
  model::RuntimeEnv before = *env;
  RecordingSink sink(*store_);
  sink.fail_put = util::IOError("head refused blob: disk full");
  util::Status status = UploadLocalPaths(*env, sink);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, util::ErrorKind::kIOError);
  EXPECT_EQ(status.error().message, "head refused blob: disk full");
  EXPECT_EQ(sink.calls, (std::vector<std::string>{"MissingBlobs", "PutBlobFromFile"}));
  EXPECT_TRUE(*env == before);

  // A failure on the second package must not leave the first one replaced.
  sink.fail_put.reset();
  ASSERT_TRUE(UploadDir(work, nullptr));
  sink.calls.clear();
  sink.fail_put = util::IOError("second package refused");
  status = UploadLocalPaths(*env, sink);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "second package refused");
  EXPECT_TRUE(*env == before);
  EXPECT_EQ(env->WorkingDir(), work.string());
}

TEST_F(UploadTest, MissingDirectoryIsAValueErrorNamingIt) {
  fs::path gone = dir_ / "gone";
  fs::create_directories(gone);
  auto env = model::RuntimeEnv::Parse(Json{{"working_dir", gone.string()}});
  ASSERT_TRUE(env) << env.error().message;
  fs::remove(gone);  // removed between validation and upload
  RecordingSink sink(*store_);
  util::Status status = UploadLocalPaths(*env, sink);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, util::ErrorKind::kValueError);
  EXPECT_NE(status.error().message.find(gone.string()), std::string::npos)
      << status.error().message;
  EXPECT_TRUE(sink.calls.empty());

  auto uri = UploadLocalPath(dir_ / "never", TopLevel::kDirectoryName, {}, sink);
  ASSERT_FALSE(uri);
  EXPECT_EQ(uri.error().kind, util::ErrorKind::kValueError);
  EXPECT_NE(uri.error().message.find((dir_ / "never").string()), std::string::npos);
}

}  // namespace
}  // namespace strata::packaging
