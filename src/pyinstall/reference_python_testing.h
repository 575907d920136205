// Test-only: running a reference Python whose pip vendors `packaging` 22 or
// later, for differential tests of the pyinstall standards.
#pragma once

#include <stdio.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace strata::pyinstall::testing {

// stdout of a shell command ("" when it cannot run).
inline std::string Capture(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

// A Python whose pip vendors packaging 22 or later (the handwritten parser
// this module follows): python3, else the newest pyenv version that has one.
inline std::string ReferencePython() {
  std::vector<std::string> candidates = {"python3"};
  const char* root = std::getenv("PYENV_ROOT");
  const char* home = std::getenv("HOME");
  std::filesystem::path versions =
      std::filesystem::path(root != nullptr ? root : (home != nullptr ? home : "/")) /
      (root != nullptr ? "versions" : ".pyenv/versions");
  std::error_code ec;
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(versions, ec)) {
    found.push_back((entry.path() / "bin" / "python3").string());
  }
  std::sort(found.rbegin(), found.rend());
  candidates.insert(candidates.end(), found.begin(), found.end());
  for (const std::string& python : candidates) {
    if (Capture("'" + python + "' -c 'from pip._vendor.packaging import _parser; print(1)' " +
                "2>/dev/null") == "1\n") {
      return python;
    }
  }
  return "";
}

}  // namespace strata::pyinstall::testing
