// Error values that cross module boundaries.
//
// Strata reports failures as values, never as exceptions (exceptions thrown by
// third-party libraries are caught where the library is called). An Error has
// a kind and a human-readable message; the kind names follow Python's
// exception names because the runtime-env contract promises Ray's exception
// types (TypeError, ValueError, ...) to users of both SDKs.
//
// Thread-safety: plain value types; safe to copy between threads.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace strata::util {

enum class ErrorKind {
  kTypeError,
  kValueError,
  kKeyError,
  kNotFound,
  kIOError,
  kCorruption,
  kTimeout,
  kUnavailable,
  kInternal,
};

// "TypeError", "ValueError", ... as printed in front of messages.
std::string_view ErrorKindName(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;

  // "<KindName>: <message>", the form the CLI prints on stderr.
  std::string ToString() const;
};

inline Error TypeError(std::string message) {
  return {ErrorKind::kTypeError, std::move(message)};
}
inline Error ValueError(std::string message) {
  return {ErrorKind::kValueError, std::move(message)};
}
inline Error KeyError(std::string message) {
  return {ErrorKind::kKeyError, std::move(message)};
}
inline Error IOError(std::string message) {
  return {ErrorKind::kIOError, std::move(message)};
}
inline Error NotFoundError(std::string message) {
  return {ErrorKind::kNotFound, std::move(message)};
}

}  // namespace strata::util
