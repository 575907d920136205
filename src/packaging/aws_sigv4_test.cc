#include "packaging/aws_sigv4.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "util/scoped_env_testing.h"

namespace strata::packaging {
namespace {

using std::chrono::system_clock;

// "20150830T123600Z" as a time point.
system_clock::time_point At(int year, int month, int day, int hour, int minute, int second) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return system_clock::from_time_t(timegm(&tm));
}

std::string Header(const SigV4Signature& signature, const std::string& name) {
  for (const auto& [key, value] : signature.headers) {
    if (key == name) return value;
  }
  return "<missing>";
}

constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The published AWS SigV4 test suite ("aws-sig-v4-test-suite"), get-vanilla.
TEST(SignV4, AwsTestSuiteGetVanilla) {
  SigV4Request request;
  request.host = "example.amazonaws.com";
  request.payload_hash = kEmptySha256;
  AwsCredentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  SigV4Signature s =
      SignV4(request, credentials, "us-east-1", "service", At(2015, 8, 30, 12, 36, 0));
  EXPECT_EQ(s.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n" +
                std::string(kEmptySha256));
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(s.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(Header(s, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(Header(s, "X-Amz-Date"), "20150830T123600Z");
  EXPECT_EQ(Header(s, "X-Amz-Security-Token"), "<missing>");
}

// aws-sig-v4-test-suite get-vanilla-query-order-key-case: parameters sorted.
TEST(SignV4, AwsTestSuiteQueryOrder) {
  SigV4Request request;
  request.host = "example.amazonaws.com";
  request.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  request.payload_hash = kEmptySha256;
  AwsCredentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  SigV4Signature s =
      SignV4(request, credentials, "us-east-1", "service", At(2015, 8, 30, 12, 36, 0));
  EXPECT_NE(s.canonical_request.find("\nParam1=value1&Param2=value2\n"), std::string::npos);
  EXPECT_EQ(s.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

// The GET Object example of the S3 SigV4 documentation ("Signature Calculations
// for the Authorization Header: Transferring Payload in a Single Chunk").
TEST(SignV4, S3DocumentationGetObject) {
  SigV4Request request;
  request.host = "examplebucket.s3.amazonaws.com";
  request.encoded_path = "/test.txt";
  request.headers = {{"Range", "bytes=0-9"}, {"x-amz-content-sha256", kEmptySha256}};
  request.payload_hash = kEmptySha256;
  AwsCredentials credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                             ""};
  SigV4Signature s = SignV4(request, credentials, "us-east-1", "s3", At(2013, 5, 24, 0, 0, 0));
  EXPECT_EQ(s.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:" +
                std::string(kEmptySha256) +
                "\nx-amz-date:20130524T000000Z\n\n"
                "host;range;x-amz-content-sha256;x-amz-date\n" +
                kEmptySha256);
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// Computed with botocore 1.43 S3SigV4Auth: a path-style request to a custom
// endpoint with a port, an encoded key and a session token.
TEST(SignV4, MatchesBotocoreWithSessionTokenAndEncodedKey) {
  SigV4Request request;
  request.host = "127.0.0.1:9000";
  request.encoded_path = "/my-bucket/" + AwsUriEncode("dir/a b+c~\xc3\xa9.zip", true);
  EXPECT_EQ(request.encoded_path, "/my-bucket/dir/a%20b%2Bc~%C3%A9.zip");
  request.headers = {{"x-amz-content-sha256", kEmptySha256}};
  request.payload_hash = kEmptySha256;
  AwsCredentials credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                             "FQoGZXIvYXdzEXAMPLETOKEN//+="};
  SigV4Signature s = SignV4(request, credentials, "eu-west-3", "s3", At(2024, 2, 29, 23, 59, 59));
  EXPECT_EQ(s.signature, "240f6604e292e0ffad2f8b9504dc30c56018fbdef5c9ac587cdb56e4dacfe2b0");
  EXPECT_EQ(Header(s, "X-Amz-Security-Token"), "FQoGZXIvYXdzEXAMPLETOKEN//+=");
  EXPECT_NE(Header(s, "Authorization")
                .find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"),
            std::string::npos);
}

// Computed with botocore: the GCS interoperability form (region "auto").
TEST(SignV4, MatchesBotocoreForGcsRegionAuto) {
  SigV4Request request;
  request.host = "storage.googleapis.com";
  request.encoded_path = "/gbucket/obj.tar.gz";
  request.headers = {{"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}};
  request.payload_hash = "UNSIGNED-PAYLOAD";
  AwsCredentials credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                             ""};
  SigV4Signature s = SignV4(request, credentials, "auto", "s3", At(2024, 1, 1, 0, 0, 0));
  EXPECT_EQ(s.signature, "bdf696d02f141b862fef6b19abb9d988ba449a0265e4e5c0dbda3ef5b191dbdc");
}

TEST(SignV4, CanonicalHeaderValuesAreTrimmedAndCollapsed) {
  SigV4Request request;
  request.host = "h";
  request.headers = {{"X-Custom", "  a   b  "}};
  request.payload_hash = kEmptySha256;
  SigV4Signature s = SignV4(request, {"k", "s", ""}, "r", "s3", At(2020, 1, 1, 0, 0, 0));
  EXPECT_NE(s.canonical_request.find("\nx-custom:a b\n"), std::string::npos) << s.canonical_request;
}

TEST(AwsUriEncode, EncodesAllButUnreserved) {
  EXPECT_EQ(AwsUriEncode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(AwsUriEncode("a/b c", false), "a%2Fb%20c");
  EXPECT_EQ(AwsUriEncode("a/b c", true), "a/b%20c");
  EXPECT_EQ(AwsUriEncode("?#=&+%", true), "%3F%23%3D%26%2B%25");
}

TEST(Sha256Hex, KnownDigests) {
  EXPECT_EQ(Sha256Hex(""), kEmptySha256);
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ParseAwsCredentialsFile, PicksTheProfile) {
  const char* text =
      "# comment\n"
      "[default]\n"
      "aws_access_key_id = DEFAULTKEY\n"
      "aws_secret_access_key=defaultsecret\n"
      "\n"
      "[ work ]\n"
      "; another comment\n"
      "AWS_ACCESS_KEY_ID = WORKKEY  \n"
      "aws_secret_access_key = work/secret+\n"
      "aws_session_token = tok==\n"
      "region = eu-west-1\n"
      "[incomplete]\n"
      "aws_access_key_id = X\n";
  auto def = ParseAwsCredentialsFile(text, "default");
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ(def->access_key_id, "DEFAULTKEY");
  EXPECT_EQ(def->secret_access_key, "defaultsecret");
  EXPECT_EQ(def->session_token, "");
  auto work = ParseAwsCredentialsFile(text, "work");
  ASSERT_TRUE(work.has_value());
  EXPECT_EQ(work->access_key_id, "WORKKEY");
  EXPECT_EQ(work->secret_access_key, "work/secret+");
  EXPECT_EQ(work->session_token, "tok==");
  EXPECT_FALSE(ParseAwsCredentialsFile(text, "incomplete").has_value());
  EXPECT_FALSE(ParseAwsCredentialsFile(text, "absent").has_value());
}

using util::testing::ScopedEnv;

class LoadAwsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/strata-sigv4-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    std::filesystem::create_directories(dir_ / ".aws");
    std::ofstream(dir_ / ".aws" / "credentials") << "[default]\naws_access_key_id=HOMEKEY\n"
                                                    "aws_secret_access_key=homesecret\n";
    std::ofstream(dir_ / "other") << "[p]\naws_access_key_id=OTHERKEY\n"
                                     "aws_secret_access_key=othersecret\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  ScopedEnv Env(std::optional<std::string> key, std::optional<std::string> secret,
                std::optional<std::string> file, std::optional<std::string> profile) {
    return ScopedEnv({{"HOME", dir_.string()},
                      {"AWS_ACCESS_KEY_ID", key},
                      {"AWS_SECRET_ACCESS_KEY", secret},
                      {"AWS_SESSION_TOKEN", std::nullopt},
                      {"AWS_SHARED_CREDENTIALS_FILE", file},
                      {"AWS_PROFILE", profile}});
  }
  std::filesystem::path dir_;
};

TEST_F(LoadAwsCredentialsTest, EnvironmentFirst) {
  auto env = Env("ENVKEY", "envsecret", std::nullopt, std::nullopt);
  auto credentials = LoadAwsCredentials();
  ASSERT_TRUE(credentials.has_value());
  ASSERT_TRUE(credentials->has_value());
  EXPECT_EQ((*credentials)->access_key_id, "ENVKEY");
}

TEST_F(LoadAwsCredentialsTest, PartialEnvironmentIsAnError) {
  auto env = Env("ENVKEY", std::nullopt, std::nullopt, std::nullopt);
  auto credentials = LoadAwsCredentials();
  ASSERT_FALSE(credentials.has_value());
  EXPECT_NE(credentials.error().message.find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
}

TEST_F(LoadAwsCredentialsTest, HomeCredentialsFile) {
  auto env = Env(std::nullopt, std::nullopt, std::nullopt, std::nullopt);
  auto credentials = LoadAwsCredentials();
  ASSERT_TRUE(credentials.has_value());
  ASSERT_TRUE(credentials->has_value());
  EXPECT_EQ((*credentials)->access_key_id, "HOMEKEY");
}

TEST_F(LoadAwsCredentialsTest, SharedCredentialsFileAndProfile) {
  auto env = Env(std::nullopt, std::nullopt, (dir_ / "other").string(), "p");
  auto credentials = LoadAwsCredentials();
  ASSERT_TRUE(credentials.has_value());
  ASSERT_TRUE(credentials->has_value());
  EXPECT_EQ((*credentials)->access_key_id, "OTHERKEY");
}

TEST_F(LoadAwsCredentialsTest, MissingNamedProfileIsAnError) {
  auto env = Env(std::nullopt, std::nullopt, std::nullopt, "nope");
  auto credentials = LoadAwsCredentials();
  ASSERT_FALSE(credentials.has_value());
  EXPECT_NE(credentials.error().message.find("'nope'"), std::string::npos);
}

TEST_F(LoadAwsCredentialsTest, NothingConfiguredMeansAnonymous) {
  auto env = Env(std::nullopt, std::nullopt, (dir_ / "absent").string(), std::nullopt);
  auto credentials = LoadAwsCredentials();
  ASSERT_TRUE(credentials.has_value());
  EXPECT_FALSE(credentials->has_value());
}

}  // namespace
}  // namespace strata::packaging
