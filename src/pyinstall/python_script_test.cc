#include "pyinstall/python_script.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace strata::pyinstall {
namespace {

using namespace std::chrono_literals;

// Debian's interpreter (installed by scripts/install-deps.sh).
const char* kPython = "/usr/bin/python3";

TEST(RunPythonScriptTest, ReturnsStdoutOnly) {
  auto out = RunPythonScript(kPython, "import sys; print('out'); print('err', file=sys.stderr)");
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(*out, "out\n");
}

TEST(RunPythonScriptTest, SiteImportCanBeSkipped) {
  auto with_site = RunPythonScript(kPython, "import sys; print('site' in sys.modules)");
  auto without =
      RunPythonScript(kPython, "import sys; print('site' in sys.modules)", SiteImport::kSkip);
  ASSERT_TRUE(with_site && without);
  EXPECT_EQ(*with_site, "True\n");
  EXPECT_EQ(*without, "False\n");
}

TEST(RunPythonScriptTest, FailuresQuoteStderrAndNameTheProgram) {
  auto failed = RunPythonScript(kPython, "import sys; sys.exit('no facts here')");
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find(kPython), std::string::npos) << failed.error().message;
  EXPECT_NE(failed.error().message.find("no facts here"), std::string::npos);
  auto missing = RunPythonScript("/nonexistent/python3", "pass");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot run /nonexistent/python3"), std::string::npos)
      << missing.error().message;
  auto slow = RunPythonScript(kPython, "import time; time.sleep(30)", SiteImport::kSkip, 300ms);
  ASSERT_FALSE(slow);
  EXPECT_NE(slow.error().message.find("did not answer"), std::string::npos) << slow.error().message;
}

}  // namespace
}  // namespace strata::pyinstall
