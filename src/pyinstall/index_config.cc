#include "pyinstall/index_config.h"

#include <pwd.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <iterator>
#include <set>

extern char** environ;

namespace strata::pyinstall {
namespace {

constexpr std::string_view kWhitespace = " \t\n\v\f\r";

std::string_view Strip(std::string_view text) {
  std::size_t start = text.find_first_not_of(kWhitespace);
  if (start == std::string_view::npos) return {};
  return text.substr(start, text.find_last_not_of(kWhitespace) - start + 1);
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// str.split() with no arguments.
std::vector<std::string> SplitWhitespace(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while ((i = text.find_first_not_of(kWhitespace, i)) != std::string_view::npos) {
    std::size_t end = text.find_first_of(kWhitespace, i);
    out.emplace_back(text.substr(i, end == std::string_view::npos ? end : end - i));
    i = end;
  }
  return out;
}

// Lines as Python's text mode splits them (universal newlines).
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') continue;
    out.push_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

util::Error IniError(std::string_view file, std::size_t line, const std::string& what) {
  return util::ValueError("Configuration file could not be loaded: while reading from '" +
                          std::string(file) + "' [line " + std::to_string(line) + "]: " + what);
}

// pip's configuration._normalize_name.
std::string NormalizeKey(std::string_view name) {
  std::string out = Lower(name);
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  if (out.starts_with("--")) out.erase(0, 2);
  return out;
}

struct Entry {
  std::string value;
  std::string origin;
};
// A Python dict of "section.key" -> value: a key keeps its first position.
using Dict = std::vector<std::pair<std::string, Entry>>;

void Put(Dict& dict, const std::string& key, Entry entry) {
  for (auto& [existing, value] : dict) {
    if (existing == key) {
      value = std::move(entry);
      return;
    }
  }
  dict.emplace_back(key, std::move(entry));
}

std::optional<std::string> Lookup(const std::vector<std::pair<std::string, std::string>>& env,
                                  std::string_view name) {
  for (const auto& [key, value] : env) {
    if (key == name) return value;
  }
  return std::nullopt;
}

// os.path.expanduser("~").
std::string Home(const std::vector<std::pair<std::string, std::string>>& env) {
  std::optional<std::string> home = Lookup(env, "HOME");
  if (!home) {
    const passwd* entry = ::getpwuid(::getuid());
    home = entry != nullptr ? std::string(entry->pw_dir) : std::string("~");
  }
  while (home->size() > 1 && home->back() == '/') home->pop_back();
  return home->empty() ? "/" : *home;
}

std::string ExpandUser(const std::string& path, const std::string& home) {
  if (path == "~") return home;
  if (path.starts_with("~/")) return (home == "/" ? "" : home) + path.substr(1);
  return path;
}

// Loads one file into `dict` as pip's Configuration._load_file does. A file
// that does not exist or cannot be opened is skipped, as configparser does.
util::Status LoadFile(const std::filesystem::path& path, Dict& dict) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || std::filesystem::is_directory(path, ec)) return util::Status::Ok();
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto sections = ParseIni(text, path.string());
  if (!sections) return sections.error();
  for (const auto& [section, items] : *sections) {
    for (const auto& [name, value] : items) {
      Put(dict, section + "." + NormalizeKey(name),
          {value, path.string() + " [" + section + "] " + name});
    }
  }
  return util::Status::Ok();
}

// pip's utils.misc.strtobool.
std::optional<bool> StrToBool(std::string_view text) {
  std::string value = Lower(text);
  for (std::string_view yes : {"y", "yes", "t", "true", "on", "1"}) {
    if (value == yes) return true;
  }
  for (std::string_view no : {"n", "no", "f", "false", "off", "0"}) {
    if (value == no) return false;
  }
  return std::nullopt;
}

enum class Option { kIndexUrl, kExtraIndexUrl, kFindLinks, kTrustedHost, kNoIndex };

// The long options handled here (pip's names, without "--").
std::optional<Option> LongOption(std::string_view name) {
  if (name == "index-url" || name == "pypi-url") return Option::kIndexUrl;
  if (name == "extra-index-url") return Option::kExtraIndexUrl;
  if (name == "find-links") return Option::kFindLinks;
  if (name == "trusted-host") return Option::kTrustedHost;
  if (name == "no-index") return Option::kNoIndex;
  return std::nullopt;
}

std::string OriginKey(Option option) {
  switch (option) {
    case Option::kIndexUrl:
      return "index-url";
    case Option::kExtraIndexUrl:
      return "extra-index-url";
    case Option::kFindLinks:
      return "find-links";
    case Option::kTrustedHost:
      return "trusted-host";
    case Option::kNoIndex:
      return "no-index";
  }
  return "";
}

std::vector<std::string>* List(IndexConfig& config, Option option) {
  switch (option) {
    case Option::kExtraIndexUrl:
      return &config.extra_index_urls;
    case Option::kFindLinks:
      return &config.find_links;
    case Option::kTrustedHost:
      return &config.trusted_hosts;
    default:
      return nullptr;
  }
}

// One configuration value, as ConfigOptionParser._update_defaults sets it.
util::Status ApplyConfigured(IndexConfig& config, std::string_view name, const Entry& entry) {
  std::optional<Option> option = LongOption(name);
  if (!option) return util::Status::Ok();
  if (*option == Option::kIndexUrl) {
    config.index_url = entry.value;
  } else if (*option == Option::kNoIndex) {
    std::optional<bool> value = StrToBool(entry.value);
    if (!value) {
      return util::ValueError(entry.value + " is not a valid value for " + std::string(name) +
                              " option, please specify a boolean value like yes/no, "
                              "true/false or 1/0 instead.");
    }
    config.no_index = *value;
  } else {
    *List(config, *option) = SplitWhitespace(entry.value);
  }
  config.origins[OriginKey(*option)] = {entry.origin};
  return util::Status::Ok();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ProcessEnvironment() {
  std::vector<std::pair<std::string, std::string>> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    std::size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    out.emplace_back(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return out;
}

util::Result<std::vector<std::pair<std::string, IniSection>>> ParseIni(std::string_view text,
                                                                       std::string_view file) {
  // Values are kept as lists of lines until the end, as configparser does.
  using RawSection = std::vector<std::pair<std::string, std::vector<std::string>>>;
  RawSection defaults;
  std::vector<std::pair<std::string, RawSection>> sections;
  RawSection* current = nullptr;
  std::string section_name;
  constexpr std::size_t kNoOption = static_cast<std::size_t>(-1);
  std::size_t option = kNoOption;  // index of the current option in *current
  std::size_t indent_level = 0;
  std::set<std::string> added_sections;
  std::set<std::pair<std::string, std::string>> added_options;
  std::size_t line_number = 0;
  for (std::string_view line : Lines(text)) {
    ++line_number;
    bool comment = Strip(line).starts_with('#') || Strip(line).starts_with(';');
    std::string_view value = comment ? std::string_view() : Strip(line);
    if (value.empty()) {
      // Blank lines belong to a value that continues after them.
      if (!comment && current != nullptr && option != kNoOption) {
        (*current)[option].second.emplace_back();
      }
      continue;
    }
    std::size_t indent = line.find_first_not_of(kWhitespace);
    if (current != nullptr && option != kNoOption && indent > indent_level) {
      (*current)[option].second.emplace_back(value);
      continue;
    }
    indent_level = indent;
    std::size_t close = value.rfind(']');
    if (value[0] == '[' && close != std::string_view::npos && close > 1) {
      section_name = std::string(value.substr(1, close - 1));
      option = kNoOption;
      if (section_name == "DEFAULT") {
        current = &defaults;
        continue;
      }
      if (added_sections.contains(section_name)) {
        return IniError(file, line_number, "section '" + section_name + "' already exists");
      }
      added_sections.insert(section_name);
      current = nullptr;
      for (auto& [name, items] : sections) {
        if (name == section_name) current = &items;
      }
      if (current == nullptr) current = &sections.emplace_back(section_name, RawSection()).second;
      continue;
    }
    if (current == nullptr) {
      return IniError(file, line_number, "file contains no section headers");
    }
    std::size_t delimiter = value.find_first_of("=:");
    if (delimiter == std::string_view::npos) {
      return IniError(file, line_number, "parsing error: '" + std::string(value) + "'");
    }
    std::string name = Lower(Strip(value.substr(0, delimiter)));
    if (name.empty()) return IniError(file, line_number, "option without a name");
    if (!added_options.emplace(section_name, name).second) {
      return IniError(file, line_number,
                      "option '" + name + "' in section '" + section_name + "' already exists");
    }
    std::string first(Strip(value.substr(delimiter + 1)));
    option = kNoOption;
    for (std::size_t k = 0; k < current->size(); ++k) {
      if ((*current)[k].first == name) option = k;
    }
    if (option == kNoOption) {
      option = current->size();
      current->emplace_back(name, std::vector<std::string>());
    }
    (*current)[option].second = {first};
  }
  auto join = [](const std::vector<std::string>& lines) {
    std::string out;
    for (std::size_t k = 0; k < lines.size(); ++k) out += (k ? "\n" : "") + lines[k];
    out.erase(out.find_last_not_of(kWhitespace) + 1);
    return out;
  };
  std::vector<std::pair<std::string, IniSection>> out;
  for (const auto& [name, items] : sections) {
    IniSection merged;
    for (const auto& [key, lines] : defaults) merged.emplace_back(key, join(lines));
    for (const auto& [key, lines] : items) {
      bool replaced = false;
      for (auto& [existing, value] : merged) {
        if (existing == key) {
          value = join(lines);
          replaced = true;
        }
      }
      if (!replaced) merged.emplace_back(key, join(lines));
    }
    out.emplace_back(name, std::move(merged));
  }
  return out;
}

util::Result<IndexConfig> LoadIndexConfig(const std::vector<std::string>& options,
                                          const IndexConfigSources& sources) {
  IndexConfig config;
  for (const std::string& token : options)
    config.isolated = config.isolated || token == "--isolated";
  const auto& env = sources.environment;
  std::string home = Home(env);

  enum Kind { kGlobal, kUser, kSite, kEnvFile, kEnvVar, kKinds };
  std::array<Dict, kKinds> kinds;
  std::optional<std::string> config_file = Lookup(env, "PIP_CONFIG_FILE");
  if (config_file != "/dev/null") {
    if (config_file && !config_file->empty()) {
      if (auto status = LoadFile(*config_file, kinds[kEnvFile]); !status) return status.error();
    }
    std::string dirs = Lookup(env, "XDG_CONFIG_DIRS").value_or("");
    if (Strip(dirs).empty()) dirs = "/etc/xdg";
    std::vector<std::filesystem::path> global;
    std::size_t start = 0;
    while (true) {
      std::size_t colon = dirs.find(':', start);
      std::string dir = dirs.substr(start, colon == std::string::npos ? colon : colon - start);
      global.push_back(std::filesystem::path(ExpandUser(dir, home)) / "pip" / "pip.conf");
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    global.push_back(sources.system_config_dir / "pip.conf");
    for (const auto& path : global) {
      if (auto status = LoadFile(path, kinds[kGlobal]); !status) return status.error();
    }
    std::error_code ec;
    bool config_file_exists =
        config_file && !config_file->empty() && std::filesystem::exists(*config_file, ec);
    if (!config.isolated && !config_file_exists) {
      std::string xdg_home = Lookup(env, "XDG_CONFIG_HOME").value_or("");
      if (Strip(xdg_home).empty()) xdg_home = ExpandUser("~/.config", home);
      for (const auto& path : {std::filesystem::path(home) / ".pip" / "pip.conf",
                               std::filesystem::path(xdg_home) / "pip" / "pip.conf"}) {
        if (auto status = LoadFile(path, kinds[kUser]); !status) return status.error();
      }
    }
    if (sources.site_prefix) {
      if (auto status = LoadFile(*sources.site_prefix / "pip.conf", kinds[kSite]); !status) {
        return status.error();
      }
    }
  }
  if (!config.isolated) {
    for (const auto& [name, value] : env) {
      if (!name.starts_with("PIP_")) continue;
      std::string key = Lower(name.substr(4));
      if (key == "version" || key == "help") continue;
      Put(kinds[kEnvVar], ":env:." + NormalizeKey(key), {value, "environment " + name});
    }
  }

  Dict merged;
  for (const Dict& kind : kinds) {
    for (const auto& [key, entry] : kind) Put(merged, key, entry);
  }
  for (std::string_view section : {"global", "install", ":env:"}) {
    for (const auto& [key, entry] : merged) {
      std::size_t dot = key.find('.');
      if (entry.value.empty() || key.substr(0, dot) != section) continue;
      if (auto status = ApplyConfigured(config, key.substr(dot + 1), entry); !status) {
        return status.error();
      }
    }
  }

  for (std::size_t i = 0; i < options.size(); ++i) {
    const std::string& token = options[i];
    if (token == "--") {
      config.unhandled_options.insert(config.unhandled_options.end(), options.begin() + i,
                                      options.end());
      break;
    }
    std::optional<Option> option;
    std::optional<std::string> value;
    std::string spelling;
    if (token == "--isolated") continue;
    if (token.starts_with("--")) {
      std::size_t equals = token.find('=');
      spelling = token.substr(0, equals);
      option = LongOption(spelling.substr(2));
      if (equals != std::string::npos) value = token.substr(equals + 1);
      // optparse rejects a value for a flag; pip's own error is the better report.
      if (option == Option::kNoIndex && value) option.reset();
    } else if (token.size() >= 2 && (token[1] == 'i' || token[1] == 'f') && token[0] == '-') {
      spelling = token.substr(0, 2);
      option = token[1] == 'i' ? Option::kIndexUrl : Option::kFindLinks;
      if (token.size() > 2) value = token.substr(2);
    }
    if (!option) {
      config.unhandled_options.push_back(token);
      continue;
    }
    std::vector<std::string>& origin = config.origins[OriginKey(*option)];
    if (*option == Option::kNoIndex) {
      config.no_index = true;
      origin.push_back("option " + spelling);
      continue;
    }
    if (!value) {
      if (i + 1 == options.size()) {
        return util::ValueError(spelling + " option requires 1 argument");
      }
      value = options[++i];
    }
    if (*option == Option::kIndexUrl) {
      config.index_url = *value;
      origin = {"option " + spelling};
    } else {
      List(config, *option)->push_back(*value);
      origin.push_back("option " + spelling);
    }
  }
  return config;
}

}  // namespace strata::pyinstall
