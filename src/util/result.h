// Result<T>: a value or an Error, in the spirit of C++23 std::expected (which
// GCC 12's library lacks). Parse and validation functions return it so that
// callers must look at the error before touching the value.
//
//   Result<int> ParsePort(std::string_view s);
//   auto port = ParsePort(text);
//   if (!port) return port.error();
//   Use(*port);
//
// Thread-safety: a plain value type.
#pragma once

#include <cassert>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "util/error.h"

namespace strata::util {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(const T& value) : state_(value) {}            // NOLINT: implicit by design
  Result(T&& value) : state_(std::move(value)) {}      // NOLINT
  Result(const Error& error) : state_(error) {}        // NOLINT
  Result(Error&& error) : state_(std::move(error)) {}  // NOLINT
  template <class U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Error> && !std::is_same_v<std::decay_t<U>, Result>)
      Result(U&& value)
      : state_(std::in_place_index<0>, std::forward<U>(value)) {}  // NOLINT

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(state_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    assert(!has_value());
    return std::get<1>(state_);
  }
  Error&& error() && {
    assert(!has_value());
    return std::get<1>(std::move(state_));
  }

 private:
  std::variant<T, Error> state_;
};

// Status: success or an Error, for operations without a value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(const Error& error) : error_(error) {}        // NOLINT: implicit by design
  Status(Error&& error) : error_(std::move(error)) {}  // NOLINT
  static Status Ok() { return Status(); }

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& {
    assert(!ok());
    return *error_;
  }
  Error&& error() && {
    assert(!ok());
    return std::move(*error_);
  }

 private:
  std::optional<Error> error_;
};

}  // namespace strata::util
