#include "util/error.h"

namespace strata::util {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kTypeError:
      return "TypeError";
    case ErrorKind::kValueError:
      return "ValueError";
    case ErrorKind::kKeyError:
      return "KeyError";
    case ErrorKind::kNotFound:
      return "NotFoundError";
    case ErrorKind::kIOError:
      return "IOError";
    case ErrorKind::kCorruption:
      return "CorruptionError";
    case ErrorKind::kTimeout:
      return "TimeoutError";
    case ErrorKind::kUnavailable:
      return "UnavailableError";
    case ErrorKind::kInternal:
      return "InternalError";
  }
  return "Error";
}

std::string Error::ToString() const {
  std::string out(ErrorKindName(kind));
  out += ": ";
  out += message;
  return out;
}

}  // namespace strata::util
