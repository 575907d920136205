#include "model/uri.h"

#include <gtest/gtest.h>

namespace strata::model {
namespace {

std::string Name(const char* uri) {
  auto parsed = ParseUri(uri);
  EXPECT_TRUE(parsed) << uri;
  return parsed ? parsed->package_name : "";
}

TEST(IsPath, FollowsUrlparseSchemeRule) {
  EXPECT_TRUE(IsPath("."));
  EXPECT_TRUE(IsPath("/abs/dir"));
  EXPECT_TRUE(IsPath("rel/dir:x"));
  EXPECT_TRUE(IsPath("1abc:x"));
  EXPECT_FALSE(IsPath("s3://b/k.zip"));
  EXPECT_FALSE(IsPath("localhost:8080"));
  EXPECT_FALSE(IsPath("  HTTPS://x/y.zip"));
  EXPECT_EQ(UrlScheme("  HTTPS://x/y.zip"), "https");
}

TEST(ParseUri, PackageNames) {
  EXPECT_EQ(Name("gcs://_strata_pkg_0123abcd.zip"), "_strata_pkg_0123abcd.zip");
  EXPECT_EQ(Name("https://test.com/file.zip"), "https_test_com_file.zip");
  EXPECT_EQ(Name("https://test.com/file.whl"), "file.whl");
  EXPECT_EQ(Name("s3://bucket/dir/pkg-1.0.tar.gz"), "s3_bucket_dir_pkg-1_0.tar.gz");
  EXPECT_EQ(Name("s3://bucket/a.b.tgz?x=1"), "s3_bucket_a_b.tgz");
  EXPECT_EQ(Name("https://user@host:8080/a+b (1).zip"), "https_user_host_8080_a_b__1_.zip");
  EXPECT_EQ(Name("gs://bucket/pkg.tar.xz"), "gs_bucket_pkg.tar.xz");
  EXPECT_EQ(Name("s3://package.zip"), "s3_package.zip");
  EXPECT_EQ(Name("pip://abc123"), "abc123");
}

TEST(ParseUri, Protocols) {
  auto parsed = ParseUri("FILE:///tmp/x.zip");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->protocol, Protocol::kFile);
  EXPECT_TRUE(IsRemoteProtocol(Protocol::kHttp));
  EXPECT_FALSE(IsRemoteProtocol(Protocol::kGcs));
  EXPECT_EQ(ProtocolScheme(Protocol::kAbfss), "abfss");
}

TEST(ParseUri, Errors) {
  auto path = ParseUri("./dir");
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().message, "Expected URI but received path ./dir");
  auto unknown = ParseUri("ftp://h/x.zip");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, util::ErrorKind::kValueError);
  EXPECT_EQ(unknown.error().message,
            "Invalid protocol for runtime_env URI \"ftp://h/x.zip\". Supported protocols: "
            "['GCS', 'CONDA', 'PIP', 'UV', 'HTTP', 'HTTPS', 'S3', 'GS', 'AZURE', 'ABFSS', "
            "'FILE']. Original error: 'ftp' is not a valid Protocol");
}

}  // namespace
}  // namespace strata::model
