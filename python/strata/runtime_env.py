"""Runtime environments: Ray's ``RuntimeEnv`` and ``RuntimeEnvConfig``.

Both are ``dict`` subclasses with the behaviour of ``ray.runtime_env``; every
validation, normalisation and error message comes from Strata's C++ model
(``strata._native``, src/model/), so the Python SDK, the CLI
(``strata env validate``) and the node agent never disagree::

    >>> RuntimeEnv(pip=["requests"], env_vars={"A": "1"})
    {'pip': {'packages': ['requests'], 'pip_check': False}, 'env_vars': {'A': '1'}}
    >>> RuntimeEnv(pip=1)
    TypeError: runtime_env['pip'] must be of type str or List[str], got <class 'int'>

A plain dict is accepted wherever a ``RuntimeEnv`` is; code that takes a
runtime env calls :func:`normalize` (or :func:`normalize_task_env` for a task or
actor) and gets a validated plain dict.

Values travel to the model as JSON. Besides JSON's types, a value may hold
``os.PathLike`` objects (written as their path) and tuples (written as lists);
``py_modules`` may name imported modules (written as their directory, as Ray's
upload does). A field the model does not validate (``worker_process_setup_hook``
and plugin fields) may hold any Python object, kept as it is; a validated field
holding something else is a TypeError.
"""

import copy
import dataclasses
import json
import os
import types
from typing import Any, Dict, List, Optional, Tuple

from strata import _native

__all__ = [
    "RuntimeEnv",
    "RuntimeEnvConfig",
    "normalize",
    "normalize_task_env",
    "validate_no_local_paths",
    "merge_task_env",
    "merge_job_env",
    "upload_local_paths",
    "canonical",
]

# Fields the model validates (py_modules, working_dir, ..., config), in order.
_VALIDATED_FIELDS = frozenset(json.loads(_native.validated_fields()))
_DEFAULT_CONFIG = json.loads(_native.runtime_env_config_create("{}"))
_EXTENSION_FIELDS = frozenset({"_ray_release", "_ray_commit", "_inject_current_ray"})
# Set to "1" inside a job's driver to let init()'s env override the job's.
OVERRIDE_JOB_RUNTIME_ENV_VAR = "STRATA_OVERRIDE_JOB_RUNTIME_ENV"


class _NotJson(Exception):
    pass


def _module_path(module: types.ModuleType) -> str:
    """Where an imported module lives, as Ray's py_modules upload finds it."""
    paths = getattr(module, "__path__", None)
    if paths is None:
        return module.__file__
    paths = list(paths)
    if len(paths) > 1:
        raise ValueError("py_modules only supports modules whose __path__ has length 1.")
    return paths[0]


def _to_json(value: Any) -> Any:
    """`value` as JSON types, or _NotJson naming the first object that is not."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJson(f"keys must be str, not {type(key).__name__} ({key!r})")
            out[key] = _to_json(item)
        return out
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _to_json(dataclasses.asdict(value))
    raise _NotJson(f"Object of type {type(value).__name__} is not JSON serializable")


def _field_to_json(key: str, value: Any) -> Any:
    if key == "py_modules" and isinstance(value, (list, tuple)):
        value = [_module_path(m) if isinstance(m, types.ModuleType) else m for m in value]
    try:
        return _to_json(value)
    except _NotJson as e:
        raise TypeError(f"runtime_env[{key!r}]: {e}") from None


class _Encoded:
    """An env as JSON text for the model. Values of unvalidated fields that JSON
    cannot carry travel as unique placeholder strings and are put back by
    decode()."""

    def __init__(self, env: Dict[str, Any], validated: bool = True):
        self.opaque: Dict[str, Any] = {}
        fields = {}
        for key, value in env.items():
            if not isinstance(key, str):
                raise TypeError(f"runtime_env keys must be strings, got {key!r} ({type(key)})")
            if validated and key in _VALIDATED_FIELDS:
                fields[key] = _field_to_json(key, value)
                continue
            try:
                fields[key] = _to_json(value)
            except _NotJson:
                token = f"\x00strata-opaque-{id(self)}-{len(self.opaque)}"
                self.opaque[token] = value
                fields[key] = token
        self.text = json.dumps(fields)

    def decode(self, text: str) -> Dict[str, Any]:
        env = json.loads(text)
        if self.opaque:
            for key, value in env.items():
                if isinstance(value, str) and value in self.opaque:
                    env[key] = self.opaque[value]
        return env


def _merged_opaque(*encoded: _Encoded) -> _Encoded:
    out = encoded[0]
    for other in encoded[1:]:
        out.opaque.update(other.opaque)
    return out


class RuntimeEnvConfig(dict):
    """Ray's ``RuntimeEnvConfig``: ``setup_timeout_seconds`` (seconds one
    creation attempt may take, -1 for no limit), ``eager_install`` (build the
    job's env at init rather than on first use) and ``log_files``."""

    known_fields = frozenset(_DEFAULT_CONFIG)

    def __init__(
        self,
        setup_timeout_seconds: int = _DEFAULT_CONFIG["setup_timeout_seconds"],
        eager_install: bool = _DEFAULT_CONFIG["eager_install"],
        log_files: Optional[List[str]] = None,
    ):
        super().__init__()
        fields = {
            "setup_timeout_seconds": setup_timeout_seconds,
            "eager_install": eager_install,
            "log_files": log_files,
        }
        dict.update(self, _validate_config(fields))

    @staticmethod
    def parse_and_validate_runtime_env_config(config: Any) -> "RuntimeEnvConfig":
        """A RuntimeEnvConfig as it is; a dict validated (unknown keys are
        dropped with a warning); anything else a TypeError."""
        if isinstance(config, RuntimeEnvConfig):
            return config
        return RuntimeEnvConfig._trusted(_validate_config(config))

    @staticmethod
    def default_config() -> "RuntimeEnvConfig":
        return RuntimeEnvConfig()

    @classmethod
    def _trusted(cls, fields: Dict[str, Any]) -> "RuntimeEnvConfig":
        config = cls.__new__(cls)
        dict.update(config, fields)
        return config

    def to_dict(self) -> Dict[str, Any]:
        return copy.deepcopy(dict(self))


def _validate_config(config: Any) -> Dict[str, Any]:
    try:
        text = json.dumps(_to_json(config))
    except _NotJson as e:
        raise TypeError(f"runtime_env['config']: {e}") from None
    return json.loads(_native.runtime_env_config_create(text))


def _wrap_config(env: Dict[str, Any]) -> Dict[str, Any]:
    if isinstance(env.get("config"), dict) and not isinstance(env["config"], RuntimeEnvConfig):
        env["config"] = RuntimeEnvConfig._trusted(env["config"])
    return env


def _rebuild_runtime_env(cls, items):
    env = cls.__new__(cls)
    dict.update(env, items)
    return env


class RuntimeEnv(dict):
    """Ray's ``RuntimeEnv(**fields)``: validated and normalised on construction
    (``_validate=False`` skips that, as in Ray), and field by field on
    ``env[key] = value``. As in Ray, ``update()`` and ``setdefault()`` bypass
    validation; ``serialize()`` re-validates the whole env.

    Keyword arguments: ``py_modules, working_dir, pip, uv, conda, container,
    env_vars, worker_process_setup_hook, nsight`` (stored as ``_nsight``),
    ``config, mpi, image_uri``, and any other key (``excludes``,
    ``py_executable``, plugin fields). A named field passed as None is left out.
    """

    extensions_fields = _EXTENSION_FIELDS

    def __init__(self, *, _validate: bool = True, **fields: Any):
        super().__init__()
        encoded = _Encoded(fields, validated=_validate)
        env = encoded.decode(_native.runtime_env_create(encoded.text, _validate))
        dict.update(self, _wrap_config(env) if _validate else env)

    def __setitem__(self, key: Any, value: Any) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if not isinstance(key, str) or key not in _VALIDATED_FIELDS:
            dict.__setitem__(self, key, value)
            return
        env = json.loads(
            _native.runtime_env_set("{}", key, json.dumps(_field_to_json(key, value)))
        )
        # A value the validator drops (an empty pip list, {} env_vars) is not
        # stored, and an existing value stays, as in Ray.
        if key in env:
            dict.__setitem__(self, key, _wrap_config(env)[key])

    def set(self, name: str, value: Any) -> None:
        self[name] = value

    def get(self, name: str, default: Any = None, data_class: Any = None) -> Any:
        if name not in self:
            return default
        if data_class is None:
            return self[name]
        return data_class(**self[name])

    def remove(self, name: str) -> bool:
        if name in self:
            del self[name]
            return True
        return False

    def serialize(self) -> str:
        """``json.dumps(env, sort_keys=True)`` after validating the whole env
        again: the env's identity, the same in C++ and Python."""
        return canonical(self)

    @classmethod
    def deserialize(cls, serialized_runtime_env: str) -> "RuntimeEnv":
        """The env of ``serialize()``'s text, without validation (as Ray)."""
        return cls(_validate=False, **json.loads(serialized_runtime_env))

    def to_dict(self) -> Dict[str, Any]:
        """A plain deep copy, ``config`` included as a plain dict."""
        env = copy.deepcopy(dict(self))
        if isinstance(env.get("config"), RuntimeEnvConfig):
            env["config"] = env["config"].to_dict()
        return env

    # Pickled (e.g. into a worker) without validating again: a local
    # working_dir need not exist where the env is unpickled.
    def __reduce__(self):
        return (_rebuild_runtime_env, (type(self), list(self.items())))

    # --- Ray's accessors ---------------------------------------------------
    def working_dir(self) -> str:
        return self.get("working_dir", "")

    def py_modules(self) -> List[str]:
        return list(self.get("py_modules", []))

    def java_jars(self) -> List[str]:
        return list(self.get("java_jars", []))

    def env_vars(self) -> Dict[str, str]:
        return self.get("env_vars", {})

    def has_conda(self) -> bool:
        return bool(self.get("conda"))

    def conda_env_name(self) -> Optional[str]:
        conda = self.get("conda")
        return conda if conda and isinstance(conda, str) else None

    def conda_config(self) -> Optional[str]:
        conda = self.get("conda")
        return json.dumps(conda, sort_keys=True) if conda and isinstance(conda, dict) else None

    def has_pip(self) -> bool:
        return bool(self.get("pip"))

    def pip_config(self) -> Dict[str, Any]:
        pip = self.get("pip")
        return pip if pip and isinstance(pip, dict) else {}

    def has_uv(self) -> bool:
        return bool(self.get("uv"))

    def uv_config(self) -> Dict[str, Any]:
        uv = self.get("uv")
        return uv if uv and isinstance(uv, dict) else {}

    def nsight(self) -> Any:
        return self.get("_nsight")

    def mpi(self) -> Any:
        return self.get("mpi")

    def image_uri(self) -> Optional[str]:
        return self.get("image_uri")

    def get_extension(self, key: str) -> Any:
        if key not in _EXTENSION_FIELDS:
            raise ValueError(f"Extension key must be one of {set(_EXTENSION_FIELDS)}, got: {key}")
        return self.get(key)

    def plugins(self) -> List[Tuple[str, Any]]:
        """The fields Ray does not know, with their values."""
        return [(k, v) for k, v in self.items() if not _native.is_known_field(k)]

    def plugin_uris(self) -> List[str]:
        """Not implemented in Ray either: always empty."""
        return []


# --- helpers for the rest of the SDK ---------------------------------------


def _plain(env: Any) -> Dict[str, Any]:
    """A runtime env value as a dict to encode; {} for any falsy value (Ray's
    "not specified"), TypeError for a non-dict."""
    if not env:
        return {}
    if not isinstance(env, dict):
        raise TypeError(f"runtime_env must be dict or RuntimeEnv, but got: {type(env)}")
    return dict(env)


def normalize(env: Any) -> Dict[str, Any]:
    """Ray's parse_runtime_env as a plain dict: ``env`` (a dict, a RuntimeEnv,
    or None) validated and normalised, with ``config`` as a plain dict. A
    falsy ``env`` means "not specified" and gives ``{}``."""
    encoded = _Encoded(_plain(env))
    return encoded.decode(_native.runtime_env_create(encoded.text))


def validate_no_local_paths(env: Any) -> None:
    """The task- and actor-level rule: ValueError unless ``working_dir`` and
    ``py_modules`` are URIs (only init and job submission upload local paths)."""
    encoded = _Encoded(_plain(env), validated=False)
    _native.validate_no_local_paths(encoded.text)


def normalize_task_env(env: Any) -> Dict[str, Any]:
    """normalize() for ``@remote(runtime_env=...)`` and ``.options()``: local
    ``working_dir`` / ``py_modules`` paths are a ValueError."""
    normalized = normalize(env)
    validate_no_local_paths(normalized)
    return normalized


def merge_task_env(parent: Any, child: Any) -> Dict[str, Any]:
    """The env a task or actor runs in: an empty child inherits ``parent``
    whole; otherwise each key of ``child`` replaces the parent's, except
    ``env_vars``, merged per variable with the child winning. Both are taken
    as they are (normalise them first)."""
    p, c = _Encoded(_plain(parent), False), _Encoded(_plain(child), False)
    return _merged_opaque(p, c).decode(_native.merge_task(p.text, c.text))


def merge_job_env(job_env: Any, driver_env: Any, override: Optional[bool] = None) -> Dict[str, Any]:
    """The env of a submitted job merged with its driver's init() env,
    validated. Sharing a field or an env var name is a ValueError unless
    ``override`` (default: ``STRATA_OVERRIDE_JOB_RUNTIME_ENV=1``)."""
    if override is None:
        override = os.environ.get(OVERRIDE_JOB_RUNTIME_ENV_VAR) == "1"
    p, c = _Encoded(_plain(job_env), False), _Encoded(_plain(driver_env), False)
    return _merged_opaque(p, c).decode(_native.merge_job(p.text, c.text, bool(override)))


def upload_local_paths(
    env: Any, address: Optional[str] = None, token: Optional[str] = None
) -> Dict[str, Any]:
    """``env`` validated, with each local ``working_dir`` / ``py_modules`` path
    packaged, uploaded to the head and replaced by its ``gcs://`` URI.
    ``address``: the head's URL (default ``STRATA_ADDRESS``, else
    http://127.0.0.1:8265); ``token``: default ``STRATA_AUTH_TOKEN``."""
    encoded = _Encoded(_plain(env))
    if address is None:
        address = _native.resolve_head_address(None)
    return encoded.decode(_native.upload_local_paths(encoded.text, address, token))


def canonical(env: Any) -> str:
    """The canonical text of ``env`` (validated): ``json.dumps(normalize(env),
    sort_keys=True)``, the env's identity in C++ and Python alike."""
    encoded = _Encoded(_plain(env))
    if encoded.opaque:
        name = type(next(iter(encoded.opaque.values()))).__name__
        raise TypeError(f"Object of type {name} is not JSON serializable")
    return _native.runtime_env_serialize(encoded.text)
