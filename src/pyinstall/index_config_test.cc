#include "pyinstall/index_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "pyinstall/reference_python_testing.h"
#include "util/pyjson.h"
#include "util/scoped_env_testing.h"
#include "util/temp_dir_testing.h"

namespace strata::pyinstall {
namespace {

using testing::Capture;
using testing::ReferencePython;
using util::testing::TempDir;
using util::testing::WriteFile;
using Strings = std::vector<std::string>;
using Environment = std::vector<std::pair<std::string, std::string>>;

// A home, XDG directories, /etc and a site prefix inside a temporary directory.
class Sandbox {
 public:
  Sandbox() {
    sources_.environment = {
        {"HOME", (root() / "home").string()},
        {"XDG_CONFIG_DIRS", (root() / "xdg1").string() + ":" + (root() / "xdg2").string()},
        {"XDG_CONFIG_HOME", (root() / "config").string()}};
    sources_.system_config_dir = root() / "etc";
    sources_.site_prefix = root() / "venv";
  }
  const std::filesystem::path& root() const { return dir_.path(); }
  std::filesystem::path Write(const std::string& relative, const std::string& content) {
    WriteFile(root() / relative, content);
    return root() / relative;
  }
  void Env(const std::string& name, const std::string& value) {
    sources_.environment.emplace_back(name, value);
  }
  IndexConfig Load(const Strings& options = {}) {
    auto config = LoadIndexConfig(options, sources_);
    EXPECT_TRUE(config) << config.error().message;
    return config ? *config : IndexConfig{};
  }
  util::Result<IndexConfig> TryLoad(const Strings& options = {}) {
    return LoadIndexConfig(options, sources_);
  }
  IndexConfigSources& sources() { return sources_; }

 private:
  TempDir dir_;
  IndexConfigSources sources_;
};

TEST(IndexConfig, DefaultsWithoutConfiguration) {
  Sandbox sandbox;
  IndexConfig config = sandbox.Load();
  EXPECT_EQ(config.index_url, "https://pypi.org/simple");
  EXPECT_TRUE(config.extra_index_urls.empty());
  EXPECT_TRUE(config.find_links.empty());
  EXPECT_TRUE(config.trusted_hosts.empty());
  EXPECT_FALSE(config.no_index);
  EXPECT_TRUE(config.origins.empty());
  EXPECT_TRUE(config.unhandled_options.empty());
}

TEST(IndexConfig, FilesOverrideInPipsOrder) {
  Sandbox sandbox;
  const std::vector<std::string> files = {"xdg1/pip/pip.conf",   "xdg2/pip/pip.conf",
                                          "etc/pip.conf",        "home/.pip/pip.conf",
                                          "config/pip/pip.conf", "venv/pip.conf"};
  for (std::size_t i = 0; i < files.size(); ++i) {
    for (std::size_t k = 0; k <= i; ++k) {
      sandbox.Write(files[k], "[global]\nindex-url = https://" + std::to_string(k) + "/\n");
    }
    IndexConfig config = sandbox.Load();
    EXPECT_EQ(config.index_url, "https://" + std::to_string(i) + "/") << files[i];
    EXPECT_EQ(config.origins["index-url"],
              Strings{(sandbox.root() / files[i]).string() + " [global] index-url"});
  }
  auto pip_config_file = sandbox.Write("custom.conf", "[global]\nindex-url = https://custom/\n");
  sandbox.Env("PIP_CONFIG_FILE", pip_config_file.string());
  EXPECT_EQ(sandbox.Load().index_url, "https://custom/");
  sandbox.Env("PIP_INDEX_URL", "https://env/");
  IndexConfig config = sandbox.Load();
  EXPECT_EQ(config.index_url, "https://env/");
  EXPECT_EQ(config.origins["index-url"], Strings{"environment PIP_INDEX_URL"});
  EXPECT_EQ(sandbox.Load({"-i", "https://option/"}).index_url, "https://option/");
}

TEST(IndexConfig, InstallSectionBeatsGlobalWhateverTheFile) {
  Sandbox sandbox;
  // pip applies every [global] value, then every [install] value: a global
  // file's [install] wins over a user file's [global].
  sandbox.Write("etc/pip.conf", "[install]\nindex-url = https://etc-install/\n");
  sandbox.Write("config/pip/pip.conf", "[global]\nindex-url = https://user-global/\n");
  EXPECT_EQ(sandbox.Load().index_url, "https://etc-install/");
}

TEST(IndexConfig, PipConfigFileSkipsUserFilesAndDevNullSkipsAll) {
  Sandbox sandbox;
  sandbox.Write("etc/pip.conf", "[global]\nfind-links = etc\n");
  sandbox.Write("config/pip/pip.conf", "[global]\nextra-index-url = https://user/\n");
  auto custom = sandbox.Write("custom.conf", "[global]\ntrusted-host = custom\n");
  IndexConfig config = sandbox.Load();
  EXPECT_EQ(config.extra_index_urls, Strings{"https://user/"});
  sandbox.Env("PIP_CONFIG_FILE", custom.string());
  config = sandbox.Load();
  EXPECT_TRUE(config.extra_index_urls.empty());
  EXPECT_EQ(config.find_links, Strings{"etc"});
  EXPECT_EQ(config.trusted_hosts, Strings{"custom"});
  // A PIP_CONFIG_FILE that does not exist keeps the user files.
  sandbox.sources().environment.back().second = (sandbox.root() / "missing.conf").string();
  EXPECT_EQ(sandbox.Load().extra_index_urls, Strings{"https://user/"});
  sandbox.sources().environment.back().second = "/dev/null";
  sandbox.Env("PIP_NO_INDEX", "yes");
  config = sandbox.Load();
  EXPECT_TRUE(config.find_links.empty());
  EXPECT_TRUE(config.extra_index_urls.empty());
  EXPECT_TRUE(config.no_index);  // the environment still applies
}

TEST(IndexConfig, ListsSplitOnWhitespaceAndOptionsAppend) {
  Sandbox sandbox;
  sandbox.Write("etc/pip.conf",
                "[global]\n"
                "extra-index-url =\n"
                "    https://a/\n"
                "\n"
                "    https://b/  https://c/\n"
                "find-links: /wheels\n");
  IndexConfig config = sandbox.Load({"--extra-index-url", "https://d/", "--extra-index-url=e", "-f",
                                     "x", "-fy", "--find-links=z"});
  EXPECT_EQ(config.extra_index_urls,
            (Strings{"https://a/", "https://b/", "https://c/", "https://d/", "e"}));
  EXPECT_EQ(config.find_links, (Strings{"/wheels", "x", "y", "z"}));
  EXPECT_EQ(config.origins["find-links"],
            (Strings{(sandbox.root() / "etc/pip.conf").string() + " [global] find-links",
                     "option -f", "option -f", "option --find-links"}));
  // The environment replaces the file's list rather than extending it.
  sandbox.Env("PIP_EXTRA_INDEX_URL", "https://env1/ https://env2/");
  EXPECT_EQ(sandbox.Load().extra_index_urls, (Strings{"https://env1/", "https://env2/"}));
}

TEST(IndexConfig, EmptyValueHidesALowerSource) {
  Sandbox sandbox;
  sandbox.Write("etc/pip.conf", "[global]\nindex-url = https://etc/\n");
  sandbox.Write("venv/pip.conf", "[global]\nindex-url =\n");
  EXPECT_EQ(sandbox.Load().index_url, "https://pypi.org/simple");
}

TEST(IndexConfig, NoIndexIsPipsStrtobool) {
  for (const char* yes : {"1", "true", "YES", "On", "t", "y"}) {
    Sandbox sandbox;
    sandbox.Env("PIP_NO_INDEX", yes);
    EXPECT_TRUE(sandbox.Load().no_index) << yes;
  }
  for (const char* no : {"0", "false", "No", "off", "f", "n"}) {
    Sandbox sandbox;
    sandbox.Write("etc/pip.conf", "[global]\nno-index = true\n");
    sandbox.Env("PIP_NO_INDEX", no);
    EXPECT_FALSE(sandbox.Load().no_index) << no;
    EXPECT_TRUE(sandbox.Load({"--no-index"}).no_index) << no;
  }
  Sandbox sandbox;
  sandbox.Env("PIP_NO_INDEX", "maybe");
  auto config = sandbox.TryLoad();
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message,
            "maybe is not a valid value for no-index option, please specify a boolean value like "
            "yes/no, true/false or 1/0 instead.");
}

TEST(IndexConfig, EnvironmentNamesNormaliseAndAliasesCount) {
  Sandbox sandbox;
  sandbox.Env("PIP_TRUSTED_HOST", "a.example b.example:8080");
  sandbox.Env("PIP_FIND_LINKS", "/opt/wheels");
  sandbox.Env("PIP_PYPI_URL", "https://alias/");
  sandbox.Env("PIP_Index_Url", "https://mixed-case/");  // the last of the two wins
  IndexConfig config = sandbox.Load();
  EXPECT_EQ(config.trusted_hosts, (Strings{"a.example", "b.example:8080"}));
  EXPECT_EQ(config.find_links, Strings{"/opt/wheels"});
  EXPECT_EQ(config.index_url, "https://mixed-case/");
  sandbox.Write("etc/pip.conf", "[global]\n--Index_URL = https://file/\n");
  EXPECT_EQ(sandbox.Load({"--pypi-url", "https://option/"}).index_url, "https://option/");
}

TEST(IndexConfig, IsolatedIgnoresEnvironmentAndUserFiles) {
  Sandbox sandbox;
  sandbox.Write("etc/pip.conf", "[global]\nfind-links = etc\n");
  sandbox.Write("home/.pip/pip.conf", "[global]\nindex-url = https://user/\n");
  sandbox.Env("PIP_TRUSTED_HOST", "env");
  IndexConfig config = sandbox.Load({"--isolated"});
  EXPECT_TRUE(config.isolated);
  EXPECT_EQ(config.index_url, "https://pypi.org/simple");
  EXPECT_TRUE(config.trusted_hosts.empty());
  EXPECT_EQ(config.find_links, Strings{"etc"});
  EXPECT_TRUE(config.unhandled_options.empty());
}

TEST(IndexConfig, UnknownOptionsAreReturnedInOrder) {
  Sandbox sandbox;
  IndexConfig config = sandbox.Load({"--upgrade", "-i", "https://x/", "--timeout", "10", "--index",
                                     "abbrev", "--no-index=1", "-q", "--", "-i", "y"});
  EXPECT_EQ(config.index_url, "https://x/");
  EXPECT_FALSE(config.no_index);
  EXPECT_EQ(config.unhandled_options, (Strings{"--upgrade", "--timeout", "10", "--index", "abbrev",
                                               "--no-index=1", "-q", "--", "-i", "y"}));
  auto missing = sandbox.TryLoad({"--trusted-host"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "--trusted-host option requires 1 argument");
  // A value that looks like an option is still the value, as in optparse.
  EXPECT_EQ(sandbox.Load({"-i", "--no-index"}).index_url, "--no-index");
}

TEST(IndexConfig, ReadsTheProcessEnvironment) {
  util::testing::ScopedEnv env("PIP_STRATA_TEST_VALUE", "v=1");
  Environment environment = ProcessEnvironment();
  EXPECT_NE(std::find(environment.begin(), environment.end(),
                      std::make_pair(std::string("PIP_STRATA_TEST_VALUE"), std::string("v=1"))),
            environment.end());
}

TEST(IndexConfig, BadFilesAreErrorsNamingThem) {
  for (const char* text : {"index-url = x\n", "[global]\njust words\n", "[global]\na = 1\na = 2\n",
                           "[global]\n[global]\n", "[global]\n= x\n"}) {
    Sandbox sandbox;
    auto path = sandbox.Write("etc/pip.conf", text);
    auto config = sandbox.TryLoad();
    ASSERT_FALSE(config) << text;
    EXPECT_NE(config.error().message.find(path.string()), std::string::npos)
        << config.error().message;
  }
}

TEST(ParseIni, FollowsRawConfigParser) {
  auto sections = ParseIni(
      "# comment\n"
      "; another\n"
      "[DEFAULT]\n"
      "timeout = 5\n"
      "[global]  trailing text\n"
      "Index-URL : https://x/  # not a comment\n"
      "extra =\n"
      "  one\n"
      "  # a comment line inside a value is dropped\n"
      "\n"
      "  two\n"
      "\n"
      "timeout = 6\n"
      "[Global]\r\n"
      "k=v\r"
      "[a]b]\n",
      "f");
  ASSERT_TRUE(sections) << sections.error().message;
  ASSERT_EQ(sections->size(), 3u);
  EXPECT_EQ((*sections)[0].first, "global");
  EXPECT_EQ((*sections)[0].second, (IniSection{{"timeout", "6"},
                                               {"index-url", "https://x/  # not a comment"},
                                               {"extra", "\none\n\ntwo"}}));
  EXPECT_EQ((*sections)[1].first, "Global");
  EXPECT_EQ((*sections)[1].second, (IniSection{{"timeout", "5"}, {"k", "v"}}));
  EXPECT_EQ((*sections)[2].first, "a]b");
}

constexpr const char* kPipScript = R"(import json, os, sys
from pip._internal.commands import create_command
out = []
for case in json.load(open(sys.argv[1])):
    os.environ.clear()
    os.environ.update(case["env"])
    try:
        cmd = create_command("install", isolated=("--isolated" in case["options"]))
        opts, _ = cmd.parse_args(case["options"])
        out.append({"ok": True, "index_url": opts.index_url,
                    "extra_index_urls": opts.extra_index_urls, "find_links": opts.find_links,
                    "trusted_hosts": opts.trusted_hosts, "no_index": bool(opts.no_index)})
    except SystemExit:
        out.append({"ok": False})
print(json.dumps(out))
)";

TEST(IndexConfigDifferentialTest, AgreesWithPipsInstallParser) {
  std::string python = ReferencePython();
  if (python.empty()) GTEST_SKIP() << "no Python with pip";
  TempDir dir;
  auto root = dir.path();
  WriteFile(root / "xdg/pip/pip.conf",
            "[global]\nindex-url = https://xdg/\nfind-links = /xdg/a /xdg/b\n"
            "[install]\ntrusted-host = xdg.example\n");
  WriteFile(
      root / "home/.pip/pip.conf",
      "[global]\nindex-url = https://legacy/\nextra-index-url =\n  https://l1/\n  https://l2/\n");
  WriteFile(
      root / "config/pip/pip.conf",
      "[DEFAULT]\nno-index = off\n[global]\nindex_url = https://new/\n[install]\nfind-links =\n");
  WriteFile(root / "custom.conf", "[install]\nextra-index-url = https://custom/\n");
  WriteFile(root / "bad.conf", "[global]\nno-index = sometimes\n");
  Environment base = {{"HOME", (root / "home").string()},
                      {"XDG_CONFIG_DIRS", (root / "xdg").string()},
                      {"XDG_CONFIG_HOME", (root / "config").string()}};
  struct Case {
    Environment env;
    Strings options;
  };
  auto with = [&](Environment extra) {
    Environment env = base;
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  };
  std::vector<Case> cases = {
      {base, {}},
      {base, {"-i", "https://cli/", "--extra-index-url=https://e/", "-fX", "--no-index"}},
      {with({{"PIP_CONFIG_FILE", (root / "custom.conf").string()}}), {"--extra-index-url", "z"}},
      {with({{"PIP_CONFIG_FILE", (root / "missing.conf").string()}}), {}},
      {with({{"PIP_CONFIG_FILE", "/dev/null"}}), {}},
      {with({{"PIP_CONFIG_FILE", ""}}), {}},
      {with({{"PIP_INDEX_URL", "https://env/"},
             {"PIP_EXTRA_INDEX_URL", " a  b "},
             {"PIP_FIND_LINKS", ""},
             {"PIP_TRUSTED_HOST", "t1 t2"},
             {"PIP_NO_INDEX", "TRUE"}}),
       {"--trusted-host", "t3"}},
      {with({{"PIP_INDEX_URL", "https://env/"}}), {"--isolated", "--find-links", "f"}},
      {with({{"PIP_PYPI_URL", "https://alias/"}}), {}},
      {with({{"PIP_NO_INDEX", "nope"}}), {}},
      {with({{"PIP_CONFIG_FILE", (root / "bad.conf").string()}}), {}},
      {base, {"--find-links"}},
  };
  util::Json input = util::Json::array();
  for (const Case& c : cases) {
    util::Json env = util::Json::object();
    for (const auto& [name, value] : c.env) env[name] = value;
    input.push_back({{"env", env}, {"options", c.options}});
  }
  std::ofstream(root / "in.json") << input.dump();
  std::ofstream(root / "check.py") << kPipScript;
  util::Result<util::Json> output =
      util::ParseJson(Capture("'" + python + "' " + (root / "check.py").string() + " " +
                              (root / "in.json").string() + " 2>/dev/null"));
  ASSERT_TRUE(output) << output.error().message;
  ASSERT_EQ(output->size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const util::Json& want = (*output)[i];
    IndexConfigSources sources;
    sources.environment = cases[i].env;
    auto config = LoadIndexConfig(cases[i].options, sources);
    if (!want["ok"].get<bool>()) {
      EXPECT_FALSE(config) << "case " << i;
      continue;
    }
    ASSERT_TRUE(config) << "case " << i << ": " << config.error().message;
    EXPECT_EQ(config->index_url, want["index_url"].get<std::string>()) << "case " << i;
    EXPECT_EQ(config->extra_index_urls, want["extra_index_urls"].get<Strings>()) << "case " << i;
    EXPECT_EQ(config->find_links, want["find_links"].get<Strings>()) << "case " << i;
    EXPECT_EQ(config->trusted_hosts, want["trusted_hosts"].get<Strings>()) << "case " << i;
    EXPECT_EQ(config->no_index, want["no_index"].get<bool>()) << "case " << i;
  }
}

}  // namespace
}  // namespace strata::pyinstall
