#include "clusterenv/containerfile.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "agent/process.h"
#include "util/temp_dir_testing.h"

namespace strata::clusterenv {
namespace {

using nlohmann::json;

model::ClusterEnvSpec Minimal() {
  model::ClusterEnvSpec spec;
  spec.base_image = "localhost/debian-py:bookworm";
  return spec;
}

model::ClusterEnvSpec Full() {
  model::ClusterEnvSpec spec = Minimal();
  spec.env_vars = {{"MY_VAR", "123"}, {"GREETING", "hello world"}};
  spec.debian_packages = {"hello", "curl"};
  spec.pip_packages = {"requests==2.31.0", "flask>=2"};
  spec.conda_packages = {"numpy"};
  spec.post_build_cmds = {"echo done > /built", "touch /built.flag"};
  return spec;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The command of a `RUN ["/bin/sh", "-c", "<command>"]` line, parsed back as
// podman's JSON reader would.
std::string RunCommandOf(const std::string& line) {
  EXPECT_EQ(line.rfind("RUN [", 0), 0u) << line;
  json array = json::parse(line.substr(4));
  EXPECT_TRUE(array.is_array());
  EXPECT_EQ(array.size(), 3u);
  EXPECT_EQ(array.at(0), "/bin/sh");
  EXPECT_EQ(array.at(1), "-c");
  return array.at(2).get<std::string>();
}

std::vector<std::string> RunCommands(const std::string& containerfile) {
  std::vector<std::string> commands;
  for (const std::string& line : Lines(containerfile)) {
    if (line.rfind("RUN ", 0) == 0) commands.push_back(RunCommandOf(line));
  }
  return commands;
}

TEST(RenderContainerfile, FullSpecGolden) {
  EXPECT_EQ(RenderContainerfile(Full(), {"PIP_INDEX_URL", "PIP_TRUSTED_HOST"}),
            R"(FROM localhost/debian-py:bookworm
ENV "MY_VAR"="123" "GREETING"="hello world"
RUN ["/bin/sh", "-c", "export DEBIAN_FRONTEND=noninteractive && apt-get update && apt-get install -y --no-install-recommends hello curl && rm -rf /var/lib/apt/lists/*"]
ARG PIP_INDEX_URL
ARG PIP_TRUSTED_HOST
RUN ["/bin/sh", "-c", "if ! python3 -m pip --version >/dev/null 2>&1; then echo 'strata: pip_packages need python3 with pip in the base image' >&2; exit 1; fi; PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir --disable-pip-version-check requests==2.31.0 'flask>=2'"]
RUN ["/bin/sh", "-c", "if ! command -v conda >/dev/null 2>&1; then echo 'strata: conda_packages need conda in the base image; no conda on PATH' >&2; exit 1; fi; conda install -y numpy"]
RUN ["/bin/sh", "-c", "echo done > /built"]
RUN ["/bin/sh", "-c", "touch /built.flag"]
)");
}

TEST(RenderContainerfile, MinimalSpecIsJustFrom) {
  EXPECT_EQ(RenderContainerfile(Minimal(), {}), "FROM localhost/debian-py:bookworm\n");
  model::ClusterEnvSpec spec;
  spec.base_image = "x";
  EXPECT_EQ(RenderContainerfile(spec, {}), "FROM x\n");
}

TEST(RenderContainerfile, EachOptionalStepIsAbsentWhenEmpty) {
  struct Case {
    const char* name;
    void (*clear)(model::ClusterEnvSpec&);
    const char* marker;
  };
  const Case cases[] = {
      {"env_vars", [](model::ClusterEnvSpec& s) { s.env_vars.clear(); }, "ENV "},
      {"debian_packages", [](model::ClusterEnvSpec& s) { s.debian_packages.clear(); }, "apt-get"},
      {"pip_packages", [](model::ClusterEnvSpec& s) { s.pip_packages.clear(); }, "pip install"},
      {"conda_packages", [](model::ClusterEnvSpec& s) { s.conda_packages.clear(); },
       "conda install"},
      {"post_build_cmds", [](model::ClusterEnvSpec& s) { s.post_build_cmds.clear(); }, "/built"},
  };
  const std::string full = RenderContainerfile(Full(), {});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    model::ClusterEnvSpec spec = Full();
    c.clear(spec);
    std::string text = RenderContainerfile(spec, {});
    EXPECT_NE(full.find(c.marker), std::string::npos);
    EXPECT_EQ(text.find(c.marker), std::string::npos) << text;
    // Only that step's lines went away; the others keep their order.
    std::vector<std::string> kept;
    for (const std::string& line : Lines(full)) {
      if (line.find(c.marker) == std::string::npos) kept.push_back(line);
    }
    EXPECT_EQ(Lines(text), kept);
  }
}

TEST(RenderContainerfile, StepOrderIsFixed) {
  std::vector<std::string> lines = Lines(RenderContainerfile(Full(), {"PIP_INDEX_URL"}));
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(lines[0].rfind("FROM ", 0), 0u);
  EXPECT_EQ(lines[1].rfind("ENV ", 0), 0u);
  EXPECT_NE(lines[2].find("apt-get install"), std::string::npos);
  EXPECT_EQ(lines[3], "ARG PIP_INDEX_URL");
  EXPECT_NE(lines[4].find("pip install"), std::string::npos);
  EXPECT_NE(lines[5].find("conda install"), std::string::npos);
  EXPECT_EQ(RunCommandOf(lines[6]), "echo done > /built");
  EXPECT_EQ(RunCommandOf(lines[7]), "touch /built.flag");
}

TEST(RenderContainerfile, PostBuildCmdSurvivesQuotesNewlinesAndDollars) {
  const std::string command =
      "set -e\nprintf '%s\\n' \"$HOME\" ${PATH} `id` > /out\t# \"quoted\" 'single' \\\n"
      "echo \xc3\xa9 \\\\ done\\";
  model::ClusterEnvSpec spec = Minimal();
  spec.post_build_cmds = {command, "second"};
  std::string text = RenderContainerfile(spec, {});
  std::vector<std::string> lines = Lines(text);
  // One line per instruction: the command's newlines are JSON escapes.
  ASSERT_EQ(lines.size(), 3u) << text;
  EXPECT_EQ(RunCommandOf(lines[1]), command);
  EXPECT_EQ(RunCommandOf(lines[2]), "second");
}

TEST(RenderContainerfile, RunLinesAreJsonArraysWithSpaces) {
  model::ClusterEnvSpec spec = Minimal();
  spec.post_build_cmds = {"echo \"hi\""};
  EXPECT_EQ(Lines(RenderContainerfile(spec, {})).at(1), R"(RUN ["/bin/sh", "-c", "echo \"hi\""])");
}

TEST(RenderContainerfile, EnvValuesAreEscaped) {
  model::ClusterEnvSpec spec = Minimal();
  spec.env_vars = {
      {"A", R"(say "hi")"}, {"B", R"(C:\dir\)"}, {"C", "$HOME ${X} \\$Y"}, {"D", "it's = ok"}};
  EXPECT_EQ(Lines(RenderContainerfile(spec, {})).at(1),
            R"(ENV "A"="say \"hi\"" "B"="C:\\dir\\" "C"="\$HOME \${X} \\\$Y" "D"="it's = ok")");
}

TEST(RenderContainerfile, PackagesAreShellQuoted) {
  model::ClusterEnvSpec spec = Minimal();
  spec.debian_packages = {"g++", "hello=2.10-3", "hello/bookworm"};
  spec.pip_packages = {"requests[socks]>=2; python_version >= '3.8'", "plain"};
  spec.conda_packages = {"numpy>=1.24", "scipy"};
  std::vector<std::string> commands = RunCommands(RenderContainerfile(spec, {}));
  ASSERT_EQ(commands.size(), 3u);
  EXPECT_NE(commands[0].find("--no-install-recommends g++ hello=2.10-3 hello/bookworm &&"),
            std::string::npos)
      << commands[0];
  EXPECT_NE(
      commands[1].find(
          R"(--disable-pip-version-check 'requests[socks]>=2; python_version >= '"'"'3.8'"'"'' plain)"),
      std::string::npos)
      << commands[1];
  EXPECT_NE(commands[2].find("conda install -y 'numpy>=1.24' scipy"), std::string::npos)
      << commands[2];
}

TEST(RenderContainerfile, ArgLinesOnlyWithPipPackages) {
  model::ClusterEnvSpec spec = Full();
  const std::vector<std::string> names = {"PIP_INDEX_URL", "PIP_FIND_LINKS"};
  std::string with_pip = RenderContainerfile(spec, names);
  EXPECT_NE(with_pip.find("ARG PIP_INDEX_URL\nARG PIP_FIND_LINKS\nRUN"), std::string::npos)
      << with_pip;
  // No names: no ARG lines.
  EXPECT_EQ(RenderContainerfile(spec, {}).find("ARG"), std::string::npos);
  // No pip step: the names are not declared.
  spec.pip_packages.clear();
  EXPECT_EQ(RenderContainerfile(spec, names).find("ARG"), std::string::npos);
}

TEST(PipBuildArgs, PicksTheFourSettingsInOrder) {
  EnvList env = {{"HOME", "/root"},
                 {"PIP_TRUSTED_HOST", "example.com"},
                 {"PIP_FIND_LINKS", "/wheels"},
                 {"PIP_EXTRA_INDEX_URL", "https://extra/simple"},
                 {"PIP_INDEX_URL", "https://index/simple"},
                 {"PIP_NO_CACHE_DIR", "1"}};
  EXPECT_EQ(PipBuildArgs(env), (EnvList{{"PIP_INDEX_URL", "https://index/simple"},
                                        {"PIP_EXTRA_INDEX_URL", "https://extra/simple"},
                                        {"PIP_FIND_LINKS", "/wheels"},
                                        {"PIP_TRUSTED_HOST", "example.com"}}));
}

TEST(PipBuildArgs, SkipsUnsetAndEmpty) {
  EXPECT_TRUE(PipBuildArgs({}).empty());
  EXPECT_TRUE(PipBuildArgs({{"PATH", "/bin"}}).empty());
  EXPECT_EQ(PipBuildArgs({{"PIP_INDEX_URL", ""}, {"PIP_TRUSTED_HOST", "h"}}),
            (EnvList{{"PIP_TRUSTED_HOST", "h"}}));
}

TEST(PipBuildArgs, FirstEntryWins) {
  EXPECT_EQ(PipBuildArgs({{"PIP_INDEX_URL", "a"}, {"PIP_INDEX_URL", "b"}}),
            (EnvList{{"PIP_INDEX_URL", "a"}}));
}

// The rendered commands are valid sh, whatever the packages hold.
TEST(RenderContainerfile, CommandsPassShSyntaxCheck) {
  model::ClusterEnvSpec spec = Full();
  spec.pip_packages.push_back("weird'name\"$(id)`x`;|&");
  spec.conda_packages.push_back("a b");
  std::vector<std::string> commands = RunCommands(RenderContainerfile(spec, {}));
  ASSERT_EQ(commands.size(), 5u);
  for (const std::string& command : commands) {
    auto result = agent::RunCommand({.argv = {"/bin/sh", "-n", "-c", command}});
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_EQ(result->exit_code, 0) << command << "\n" << result->tail;
  }
}

// With nothing on PATH, the guards print their message and fail before
// running an installer.
TEST(RenderContainerfile, GuardsFailWithTheirMessage) {
  util::testing::TempDir empty;
  model::ClusterEnvSpec spec = Minimal();
  spec.pip_packages = {"requests"};
  spec.conda_packages = {"numpy"};
  std::vector<std::string> commands = RunCommands(RenderContainerfile(spec, {}));
  ASSERT_EQ(commands.size(), 2u);
  const char* expected[] = {
      "strata: pip_packages need python3 with pip in the base image",
      "strata: conda_packages need conda in the base image; no conda on PATH"};
  for (size_t i = 0; i < commands.size(); ++i) {
    auto result = agent::RunCommand({.argv = {"/bin/sh", "-c", commands[i]},
                                     .env_mode = agent::EnvMode::kReplace,
                                     .env = {{"PATH", empty.path().string()}}});
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_EQ(result->exit_code, 1);
    EXPECT_EQ(result->tail, expected[i]);
  }
}

}  // namespace
}  // namespace strata::clusterenv
