// `strata`: one binary, one subcommand per verb (see ARCHITECTURE.md).
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/command.h"

int main(int argc, char** argv) {
  CLI::App app{"Strata: runtime environments and cluster environments for compute clusters"};
  app.require_subcommand(1);
  int exit_code = strata::cli::kExitOk;
  strata::cli::AddEnvCommands(app, &exit_code);
  strata::cli::AddEnvCacheCommands(app, &exit_code);
  strata::cli::AddPackageCommands(app, &exit_code);
  strata::cli::AddRunCommands(app, &exit_code);
  strata::cli::AddClusterCommands(app, &exit_code);
  strata::cli::AddJobCommands(app, &exit_code);
  strata::cli::AddClusterEnvCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    // Usage errors share the invalid-input code, as Python's argparse does.
    return code == 0 ? 0 : strata::cli::kExitInvalidInput;
  }
  return exit_code;
}
