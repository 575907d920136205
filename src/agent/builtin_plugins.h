// The plugins of the fields Strata's node agent serves itself, apart from
// pip and uv (pip_plugin.h): working_dir, py_modules, py_executable, mpi,
// nsight, and the fields that are not served yet (conda, container,
// image_uri), whose Validate fails with a clear message.
//
// Thread-safety: see plugin.h.
#pragma once

#include <memory>
#include <vector>

#include "agent/plugin.h"

namespace strata::agent {

std::unique_ptr<RuntimeEnvPlugin> MakeWorkingDirPlugin();
std::unique_ptr<RuntimeEnvPlugin> MakePyModulesPlugin();
std::unique_ptr<RuntimeEnvPlugin> MakePyExecutablePlugin();
std::unique_ptr<RuntimeEnvPlugin> MakeMpiPlugin();
std::unique_ptr<RuntimeEnvPlugin> MakeNsightPlugin();
std::unique_ptr<RuntimeEnvPlugin> MakeUnsupportedPlugin(std::string field);

// Every plugin of the node agent, working_dir first, then in ascending
// priority (ties keep this order).
std::vector<std::unique_ptr<RuntimeEnvPlugin>> DefaultPlugins();

// Fields that need no plugin: handled by the manager itself (env_vars,
// config) or by the client (excludes, worker_process_setup_hook, java_jars).
bool IsFieldWithoutPlugin(std::string_view field);

}  // namespace strata::agent
