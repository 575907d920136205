"""Strata: per-task and per-actor runtime environments with Ray's API.

    import strata

    strata.init(runtime_env={"env_vars": {"MODE": "test"}})

    @strata.remote(runtime_env={"pip": ["demo==1.0"]})
    def version():
        import demo
        return demo.VERSION

    print(strata.get(version.remote()))
"""
from strata import exceptions
from strata._private.core import (
    ActorClass,
    ActorHandle,
    ObjectRef,
    RemoteFunction,
    get,
    get_runtime_context,
    init,
    is_initialized,
    kill,
    method,
    remote,
    shutdown,
    wait,
)

__all__ = [
    "ActorClass",
    "ActorHandle",
    "ObjectRef",
    "RemoteFunction",
    "RuntimeEnv",
    "RuntimeEnvConfig",
    "exceptions",
    "get",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "remote",
    "shutdown",
    "wait",
]


def __getattr__(name):
    # Imported on first use: a worker that runs tasks needs neither the model
    # (strata._native) nor the job client.
    if name in ("RuntimeEnv", "RuntimeEnvConfig"):
        from strata import runtime_env

        return getattr(runtime_env, name)
    if name in ("job_submission", "cluster_env"):
        import importlib

        return importlib.import_module("strata." + name)
    raise AttributeError(f"module 'strata' has no attribute {name!r}")
