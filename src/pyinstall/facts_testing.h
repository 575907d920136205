// Test-only: the marker facts of a typical Linux CPython 3.11.7 target, for
// tests that evaluate markers without running an interpreter.
#pragma once

#include "pyinstall/markers.h"

namespace strata::pyinstall::testing {

inline InterpreterFacts LinuxFacts() {
  InterpreterFacts facts;
  facts.implementation_name = "cpython";
  facts.implementation_version = "3.11.7";
  facts.os_name = "posix";
  facts.platform_machine = "x86_64";
  facts.platform_release = "6.1.0-18-amd64";
  facts.platform_system = "Linux";
  facts.platform_version = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)";
  facts.python_full_version = "3.11.7";
  facts.platform_python_implementation = "CPython";
  facts.python_version = "3.11";
  facts.sys_platform = "linux";
  return facts;
}

}  // namespace strata::pyinstall::testing
