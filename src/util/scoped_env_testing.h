// Test-only: environment variables set for one scope and restored after it.
//
// Thread-safety: none; setenv/unsetenv race with every getenv in the
// process, so use it only where no other thread reads the environment.
#pragma once

#include <stdlib.h>

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace strata::util::testing {

class ScopedEnv {
 public:
  ScopedEnv() = default;
  // Sets `name` to `value`, or unsets it when `value` is null.
  ScopedEnv(const char* name, const char* value) {
    Set(name, value ? std::optional<std::string>(value) : std::nullopt);
  }
  ScopedEnv(std::initializer_list<std::pair<const char*, std::optional<std::string>>> vars) {
    for (const auto& [name, value] : vars) Set(name, value);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) Apply(name, value);
  }

  // Sets (or, with nullopt, unsets) a variable; the first value seen is restored.
  void Set(const std::string& name, const std::optional<std::string>& value) {
    if (!saved_.contains(name)) {
      const char* old = ::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    Apply(name, value);
  }

 private:
  static void Apply(const std::string& name, const std::optional<std::string>& value) {
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }

  std::map<std::string, std::optional<std::string>> saved_;
};

}  // namespace strata::util::testing
