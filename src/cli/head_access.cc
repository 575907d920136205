// The plumbing every command that talks to a head shares (command.h).
#include <iostream>

#include "cli/command.h"

namespace strata::cli {

int ReportHeadError(const util::Error& error) {
  switch (error.kind) {
    case util::ErrorKind::kTypeError:
    case util::ErrorKind::kValueError:
    case util::ErrorKind::kKeyError:
      return ReportInvalidInput(error);
    default:
      std::cerr << error.ToString() << "\n";
      return kExitFailure;
  }
}

void AddAddressOption(CLI::App& command, std::optional<std::string>& address) {
  command.add_option(
      "--address", address,
      "head URL (default: $STRATA_ADDRESS, else " + std::string(head::kDefaultHeadAddress) + ")");
}

int WithHeadClient(const std::optional<std::string>& address,
                   const std::function<int(head::HeadClient&)>& command) {
  auto url = head::ResolveHeadAddress(address);
  if (!url) return ReportInvalidInput(url.error());
  head::HeadClient client(*url);
  return command(client);
}

std::string JsonText(const util::Json& object, std::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace strata::cli
