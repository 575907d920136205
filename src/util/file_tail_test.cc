#include "util/file_tail.h"

#include <gtest/gtest.h>

#include <string>

#include "util/temp_dir_testing.h"

namespace strata::util {
namespace {

using testing::TempDir;
using testing::WriteFile;

TEST(FileTailTest, LastLinesWithoutTheFinalNewline) {
  TempDir dir;
  WriteFile(dir.path() / "log", "one\ntwo\nthree\n\n");
  EXPECT_EQ(FileTail(dir.path() / "log", 2), "two\nthree");
  EXPECT_EQ(FileTail(dir.path() / "log", 10), "one\ntwo\nthree");
  EXPECT_EQ(FileTail(dir.path() / "log", 0), "");
  EXPECT_EQ(FileTail(dir.path() / "missing", 3), "");
}

TEST(FileTailTest, ReadsOnlyTheEndOfALargeFile) {
  TempDir dir;
  std::string big(200 * 1024, 'x');
  WriteFile(dir.path() / "log", big + "\nlast line\n");
  EXPECT_EQ(FileTail(dir.path() / "log", 1), "last line");
  EXPECT_LE(FileTail(dir.path() / "log", 5).size(), 64u * 1024);
}

TEST(FileChunkTest, PiecesFromAnOffsetAndTheWholeFile) {
  TempDir dir;
  WriteFile(dir.path() / "log", "0123456789");
  EXPECT_EQ(FileChunk(dir.path() / "log", 0, 4), "0123");
  EXPECT_EQ(FileChunk(dir.path() / "log", 8, 4), "89");
  EXPECT_EQ(FileChunk(dir.path() / "log", 10, 4), "");
  EXPECT_EQ(FileChunk(dir.path() / "log", 50, 4), "");
  EXPECT_EQ(FileChunk(dir.path() / "missing", 0, 4), "");
  EXPECT_EQ(FileText(dir.path() / "log"), "0123456789");
  EXPECT_EQ(FileText(dir.path() / "missing"), "");
}

}  // namespace
}  // namespace strata::util
