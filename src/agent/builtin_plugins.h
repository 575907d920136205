// The plugins of the fields Strata's node agent serves itself, apart from
// pip and uv (pip_plugin.h): working_dir, py_modules, py_executable, mpi,
// nsight, container and image_uri (agent/container.h), the private
// `_strata_base_image` field through which the head runs a job on a cluster
// environment's image, and the fields that are not served yet (conda), whose
// Validate fails with a clear message.
//
// Container fields: `container` ({"image": str, "run_options": [str]}, Ray's
// shape; `worker_path` is ignored as in Ray), `image_uri` (str), and
// `_strata_base_image` ({"image_id": str, "reference": str}). Their plugin
// (priority 0, so before pip/uv) resolves the image with ResolveImage and
// sets context.container, mounting $STRATA_HOME and the session directory;
// the manager then runs later installers inside the image. Only one of the
// three may be set.
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
std::unique_ptr<RuntimeEnvPlugin> MakeContainerPlugin(std::string field);
std::unique_ptr<RuntimeEnvPlugin> MakeUnsupportedPlugin(std::string field);

// Every plugin of the node agent, working_dir first, then in ascending
// priority (ties keep this order).
std::vector<std::unique_ptr<RuntimeEnvPlugin>> DefaultPlugins();

// Fields that need no plugin: handled by the manager itself (env_vars,
// config) or by the client (excludes, worker_process_setup_hook, java_jars).
bool IsFieldWithoutPlugin(std::string_view field);

}  // namespace strata::agent
