#include "head/package_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "packaging/package.h"
#include "util/digest.h"
#include "util/scoped_env_testing.h"
#include "util/temp_dir_testing.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;
using packaging::BlobStore;
using packaging::Manifest;
using packaging::ManifestEntry;
using util::ErrorKind;
using util::testing::TempDir;
using util::testing::WriteFile;

using Files = std::map<std::string, std::string>;  // path → content, sorted

Manifest ManifestOf(const Files& files) {
  std::vector<ManifestEntry> entries;
  for (const auto& [path, content] : files) {
    entries.push_back(
        {path, packaging::EntryType::kFile, false, content.size(), util::Sha256Hex(content)});
  }
  auto manifest = Manifest::FromEntries(std::move(entries));
  EXPECT_TRUE(manifest) << manifest.error().ToString();
  return manifest ? *manifest : Manifest();
}

// Sets every file under `dir` back by an hour, as if written long ago.
void Age(const fs::path& dir) {
  auto past = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) fs::last_write_time(entry.path(), past);
  }
}

using util::testing::ScopedEnv;

class PackageServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = BlobStore::Open(tmp_.path() / "store");
    ASSERT_TRUE(store) << store.error().ToString();
    store_.emplace(std::move(*store));
    auto db = HeadDb::Open(tmp_.path() / "head" / "head.db");
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
  }

  PackageService Service(std::chrono::seconds pin_duration = std::chrono::seconds(600),
                         std::uint64_t max_bytes = 1 << 20) {
    PackageServiceOptions options;
    options.pin_duration = pin_duration;
    options.max_upload_bytes = max_bytes;
    return PackageService(*store_, *db_, options);
  }

  // Uploads the files' blobs and commits them; returns the URI.
  std::string Upload(PackageService& service, const Files& files) {
    Manifest manifest = ManifestOf(files);
    auto missing = service.MissingBlobs(manifest);
    EXPECT_TRUE(missing) << missing.error().ToString();
    for (const auto& [path, content] : files) {
      util::Status ok = service.PutBlob(util::Sha256Hex(content), content);
      EXPECT_TRUE(ok.ok()) << ok.error().ToString();
    }
    auto uri = service.Commit(manifest);
    EXPECT_TRUE(uri) << uri.error().ToString();
    return uri ? *uri : "";
  }

  fs::path WriteArchive(const std::string& name, const std::string& content) {
    fs::path path = tmp_.path() / "uploads" / name;
    WriteFile(path, content);
    return path;
  }

  std::int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  TempDir tmp_;
  std::optional<BlobStore> store_;
  std::unique_ptr<HeadDb> db_;
};

TEST(PackageNameOfTest, AcceptsPlainGcsNames) {
  for (const char* uri : {"gcs://_strata_pkg_0123456789abcdef0123456789abcdef.zip",
                          "gcs://_ray_pkg_abc.zip", "gcs://my-pkg.v1_2.zip", "gcs://a"}) {
    auto name = PackageService::PackageNameOf(uri);
    ASSERT_TRUE(name) << uri << ": " << name.error().ToString();
    EXPECT_EQ("gcs://" + *name, uri);
  }
}

TEST(PackageNameOfTest, OtherProtocolsAreRefusedByName) {
  for (const char* uri : {"s3://bucket/pkg.zip", "https://example.com/pkg.zip", "gs://b/p.zip",
                          "file:///tmp/p.zip"}) {
    auto name = PackageService::PackageNameOf(uri);
    ASSERT_FALSE(name) << uri;
    EXPECT_EQ(name.error().kind, ErrorKind::kValueError);
    EXPECT_NE(name.error().message.find(uri), std::string::npos) << name.error().message;
    EXPECT_NE(name.error().message.find("only gcs:// package URIs are supported"),
              std::string::npos)
        << name.error().message;
  }
}

TEST(PackageNameOfTest, RejectsPathsAndOddNames) {
  for (const char* uri :
       {"gcs://", "gcs://a/b.zip", "gcs://../etc/passwd", "gcs://..", "gcs://.", "gcs://a..zip",
        "gcs://.hidden.zip", "gcs://-rf.zip", "gcs://a b.zip", "gcs://a%2Fb.zip", "GCS://a.zip",
        "_strata_pkg_abc.zip", "", "gcs:/a.zip"}) {
    auto name = PackageService::PackageNameOf(uri);
    ASSERT_FALSE(name) << uri;
    EXPECT_EQ(name.error().kind, ErrorKind::kValueError);
    EXPECT_NE(name.error().message.find("'" + std::string(uri) + "'"), std::string::npos)
        << name.error().message;
    EXPECT_NE(name.error().message.find("gcs://<name>"), std::string::npos) << name.error().message;
  }
  EXPECT_FALSE(PackageService::PackageNameOf(std::string("gcs://a\0b", 9)));
}

TEST(PackageServiceOptionsTest, FromEnvironment) {
  {
    ScopedEnv pin("STRATA_RUNTIME_ENV_TEMPORARY_REFERENCE_EXPIRATION_S", nullptr);
    ScopedEnv size("STRATA_MAX_PACKAGE_SIZE", nullptr);
    auto options = PackageServiceOptions::FromEnvironment();
    ASSERT_TRUE(options);
    EXPECT_EQ(options->pin_duration, std::chrono::seconds(600));
    EXPECT_EQ(options->max_upload_bytes, 100ull * 1024 * 1024);
  }
  {
    ScopedEnv pin("STRATA_RUNTIME_ENV_TEMPORARY_REFERENCE_EXPIRATION_S", "0");
    ScopedEnv size("STRATA_MAX_PACKAGE_SIZE", "1234");
    auto options = PackageServiceOptions::FromEnvironment();
    ASSERT_TRUE(options) << options.error().ToString();
    EXPECT_EQ(options->pin_duration, std::chrono::seconds(0));
    EXPECT_EQ(options->max_upload_bytes, 1234u);
  }
  for (const char* bad : {"-1", "abc", "10s", "1.5", " 5"}) {
    ScopedEnv pin("STRATA_RUNTIME_ENV_TEMPORARY_REFERENCE_EXPIRATION_S", bad);
    auto options = PackageServiceOptions::FromEnvironment();
    ASSERT_FALSE(options) << bad;
    EXPECT_EQ(options.error().kind, ErrorKind::kValueError);
    EXPECT_NE(options.error().message.find("STRATA_RUNTIME_ENV_TEMPORARY_REFERENCE_EXPIRATION_S"),
              std::string::npos);
    EXPECT_NE(options.error().message.find("'" + std::string(bad) + "'"), std::string::npos)
        << options.error().message;
  }
  {
    ScopedEnv size("STRATA_MAX_PACKAGE_SIZE", "lots");
    auto options = PackageServiceOptions::FromEnvironment();
    ASSERT_FALSE(options);
    EXPECT_NE(options.error().message.find("STRATA_MAX_PACKAGE_SIZE"), std::string::npos);
  }
}

TEST_F(PackageServiceTest, ExistsPinsOnlyStoredPackages) {
  PackageService service = Service();
  auto absent = service.Exists("gcs://absent.zip");
  ASSERT_TRUE(absent);
  EXPECT_FALSE(*absent);
  EXPECT_TRUE(db_->PinnedUris(0).empty());

  // Stored without the service (as `strata run` does): no pin until looked up.
  ASSERT_TRUE(store_->PutPackageArchive("present.zip", WriteArchive("p.zip", "zip")).ok());
  EXPECT_TRUE(db_->PinnedUris(0).empty());
  std::int64_t before = NowMs();
  auto present = service.Exists("gcs://present.zip");
  ASSERT_TRUE(present);
  EXPECT_TRUE(*present);
  // Pinned for pin_duration from now.
  EXPECT_EQ(db_->PinnedUris(before + 599'000), (std::set<std::string>{"gcs://present.zip"}));
  EXPECT_TRUE(db_->PinnedUris(NowMs() + 600'000).empty());

  auto bad = service.Exists("s3://b/present.zip");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kValueError);
}

TEST_F(PackageServiceTest, PutArchiveStoresPinsAndCounts) {
  PackageService service = Service();
  ASSERT_TRUE(service.PutArchive("gcs://whole.zip", WriteArchive("w.zip", "0123456789")).ok());
  EXPECT_TRUE(store_->HasPackage("whole.zip"));
  EXPECT_EQ(db_->PinnedUris(NowMs()), (std::set<std::string>{"gcs://whole.zip"}));
  PackageCounters counters = service.Counters();
  EXPECT_EQ(counters.archives_uploaded, 1u);
  EXPECT_EQ(counters.bytes_uploaded, 10u);

  util::Status missing = service.PutArchive("gcs://x.zip", tmp_.path() / "nope.zip");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kIOError);
  util::Status bad = service.PutArchive("gcs://a/b.zip", WriteArchive("w.zip", "x"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kValueError);
  EXPECT_FALSE(store_->HasPackage("b.zip"));
}

TEST_F(PackageServiceTest, CommitViaManifestUploadsOnlyMissingBlobs) {
  PackageService service = Service();
  Files files = {{"a.py", "print('a')\n"}, {"lib/b.py", "B = 1\n"}, {"lib/c.py", "B = 1\n"}};
  Manifest manifest = ManifestOf(files);
  auto missing = service.MissingBlobs(manifest);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->size(), 2u);  // b.py and c.py share content

  auto early = service.Commit(manifest);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().kind, ErrorKind::kNotFound);

  for (const std::string& sha : *missing) {
    auto file = std::find_if(files.begin(), files.end(),
                             [&](const auto& f) { return util::Sha256Hex(f.second) == sha; });
    ASSERT_NE(file, files.end());
    ASSERT_TRUE(service.PutBlob(sha, file->second).ok());
  }
  EXPECT_TRUE(service.MissingBlobs(manifest)->empty());
  auto uri = service.Commit(manifest);
  ASSERT_TRUE(uri) << uri.error().ToString();
  EXPECT_EQ(*uri, manifest.Uri());
  EXPECT_TRUE(store_->HasPackage(manifest.PackageName()));
  EXPECT_EQ(db_->PinnedUris(NowMs()), (std::set<std::string>{*uri}));
  auto exists = service.Exists(*uri);
  ASSERT_TRUE(exists);
  EXPECT_TRUE(*exists);

  PackageCounters counters = service.Counters();
  EXPECT_EQ(counters.blobs_uploaded, 2u);
  EXPECT_EQ(counters.bytes_uploaded, files["a.py"].size() + files["lib/b.py"].size());
  EXPECT_EQ(counters.packages_committed, 1u);
  EXPECT_EQ(counters.archives_uploaded, 0u);
}

TEST_F(PackageServiceTest, CommitsALocalPackageDirectory) {
  PackageService service = Service();
  fs::path dir = tmp_.path() / "project";
  WriteFile(dir / "main.py", "import util\n");
  WriteFile(dir / "util.py", "X = 2\n");
  WriteFile(dir / "data" / "table.csv", "a,b\n1,2\n");
  packaging::PackageOptions options;
  auto package = packaging::PrepareLocalPackage(dir, options);
  ASSERT_TRUE(package) << package.error().ToString();
  auto missing = service.MissingBlobs(package->manifest);
  ASSERT_TRUE(missing);
  for (const ManifestEntry& entry : package->manifest.entries()) {
    if (entry.type != packaging::EntryType::kFile) continue;
    std::string bytes = util::testing::ReadFile(dir / entry.path);
    ASSERT_TRUE(service.PutBlob(entry.sha256, bytes).ok());
  }
  auto uri = service.Commit(package->manifest);
  ASSERT_TRUE(uri) << uri.error().ToString();
  EXPECT_EQ(*uri, package->manifest.Uri());
  EXPECT_TRUE(store_->HasPackage(package->manifest.PackageName()));
}

TEST_F(PackageServiceTest, PutBlobChecksDigest) {
  PackageService service = Service();
  util::Status wrong = service.PutBlob(util::Sha256Hex("other"), "content");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().kind, ErrorKind::kValueError);
  EXPECT_EQ(service.Counters().blobs_uploaded, 0u);
  EXPECT_EQ(service.Counters().bytes_uploaded, 0u);
}

TEST_F(PackageServiceTest, SizeLimitsNameSizeAndLimit) {
  PackageService service = Service(std::chrono::seconds(600), 10);
  std::string big(11, 'x');
  util::Status blob = service.PutBlob(util::Sha256Hex(big), big);
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.error().kind, ErrorKind::kValueError);
  EXPECT_NE(blob.error().message.find("11 bytes"), std::string::npos) << blob.error().message;
  EXPECT_NE(blob.error().message.find("10 bytes"), std::string::npos) << blob.error().message;
  EXPECT_FALSE(store_->HasBlob(util::Sha256Hex(big)));

  std::string fits(10, 'y');
  EXPECT_TRUE(service.PutBlob(util::Sha256Hex(fits), fits).ok());

  util::Status archive = service.PutArchive("gcs://big.zip", WriteArchive("big.zip", big));
  ASSERT_FALSE(archive.ok());
  EXPECT_EQ(archive.error().kind, ErrorKind::kValueError);
  EXPECT_NE(archive.error().message.find("gcs://big.zip"), std::string::npos);
  EXPECT_NE(archive.error().message.find("11 bytes"), std::string::npos);
  EXPECT_NE(archive.error().message.find("10 bytes"), std::string::npos);
  EXPECT_FALSE(store_->HasPackage("big.zip"));
  EXPECT_TRUE(service.PutArchive("gcs://ok.zip", WriteArchive("ok.zip", fits)).ok());

  // A manifest whose files add up to more than the limit is refused up front.
  Manifest manifest = ManifestOf({{"a", "123456"}, {"b", "654321"}});
  auto missing = service.MissingBlobs(manifest);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kValueError);
  EXPECT_NE(missing.error().message.find("12 bytes"), std::string::npos);
  auto commit = service.Commit(manifest);
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().kind, ErrorKind::kValueError);
}

TEST_F(PackageServiceTest, JobHoldProtectsFromGarbageCollection) {
  PackageService service = Service(std::chrono::seconds(0));
  std::string held = Upload(service, {{"held.py", "held"}});
  std::string loose = Upload(service, {{"loose.py", "loose"}});
  ASSERT_TRUE(service
                  .HoldForJob("job1", {held, "pip://abc", "s3://bucket/x.zip", "/local/path",
                                       "gcs://other_unstored.zip"})
                  .ok());
  Age(store_->root());

  auto report = service.CollectGarbage();
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->deleted_packages, (std::vector<std::string>{loose}));
  EXPECT_EQ(report->deleted_blobs, 1u);  // loose.py's
  EXPECT_TRUE(store_->HasPackage(PackageService::PackageNameOf(held).value()));
  EXPECT_FALSE(store_->HasPackage(PackageService::PackageNameOf(loose).value()));
  EXPECT_TRUE(store_->HasBlob(util::Sha256Hex("held")));
  EXPECT_FALSE(store_->HasBlob(util::Sha256Hex("loose")));

  ASSERT_TRUE(service.ReleaseJob("job1").ok());
  report = service.CollectGarbage();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->deleted_packages, (std::vector<std::string>{held}));
  EXPECT_EQ(report->deleted_blobs, 1u);
  EXPECT_FALSE(store_->HasBlob(util::Sha256Hex("held")));
  EXPECT_EQ(service.Counters().packages_deleted, 2u);
}

TEST_F(PackageServiceTest, HoldForJobRejectsMalformedGcsUris) {
  PackageService service = Service();
  util::Status status = service.HoldForJob("job1", {"gcs://ok.zip", "gcs://a/../b.zip"});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kValueError);
  // Nothing was pinned.
  EXPECT_TRUE(db_->PinnedUris(0).empty());
}

TEST_F(PackageServiceTest, GcKeepsSharedBlobsOfSurvivingPackages) {
  PackageService service = Service(std::chrono::seconds(0));
  std::string a = Upload(service, {{"a.txt", "only a"}, {"common.txt", "shared"}});
  std::string b = Upload(service, {{"b.txt", "only b"}, {"common.txt", "shared"}});
  ASSERT_TRUE(service.HoldForJob("keeper", {b}).ok());
  Age(store_->root());

  auto report = service.CollectGarbage();
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->deleted_packages, (std::vector<std::string>{a}));
  EXPECT_EQ(report->deleted_blobs, 1u);
  EXPECT_FALSE(store_->HasBlob(util::Sha256Hex("only a")));
  EXPECT_TRUE(store_->HasBlob(util::Sha256Hex("shared")));
  EXPECT_TRUE(store_->HasBlob(util::Sha256Hex("only b")));
  // The surviving package can still be served and re-committed.
  auto again = service.Commit(ManifestOf({{"b.txt", "only b"}, {"common.txt", "shared"}}));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(*again, b);
}

TEST_F(PackageServiceTest, RecentPinsAndYoungArchivesSurvive) {
  PackageService service = Service(std::chrono::seconds(600));
  // Pinned by its commit; its files are old.
  std::string pinned = Upload(service, {{"p.txt", "pinned"}});
  Age(store_->root());
  // Stored without the service a moment ago: no pin, but young.
  ASSERT_TRUE(store_->PutPackageArchive("young.zip", WriteArchive("y.zip", "young")).ok());
  // Old and unpinned.
  ASSERT_TRUE(store_->PutPackageArchive("old.zip", WriteArchive("o.zip", "old")).ok());
  fs::last_write_time(store_->root() / "packages" / "old.zip",
                      fs::file_time_type::clock::now() - std::chrono::hours(2));
  // A pin that has already expired is dropped by the collection.
  ASSERT_TRUE(db_->Pin("gcs://old.zip", "pin", NowMs() - 1).ok());

  auto report = service.CollectGarbage();
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->deleted_packages, (std::vector<std::string>{"gcs://old.zip"}));
  EXPECT_EQ(report->deleted_blobs, 0u);
  EXPECT_EQ(report->expired_pins, 1u);
  EXPECT_TRUE(store_->HasPackage(PackageService::PackageNameOf(pinned).value()));
  EXPECT_TRUE(store_->HasPackage("young.zip"));
  EXPECT_TRUE(store_->HasBlob(util::Sha256Hex("pinned")));
}

TEST_F(PackageServiceTest, ConcurrentUseAndCollection) {
  PackageService service = Service(std::chrono::seconds(600));
  std::string uri = Upload(service, {{"x.py", "x"}});
  Manifest manifest = ManifestOf({{"x.py", "x"}});
  Age(store_->root());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto exists = service.Exists(uri);
        if (!exists || !*exists) ++failures;
        if (!service.Commit(manifest)) ++failures;
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 10; ++i) {
      auto report = service.CollectGarbage();
      if (!report || !report->deleted_packages.empty()) ++failures;
    }
  });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(store_->HasPackage(manifest.PackageName()));
}

}  // namespace
}  // namespace strata::head
