"""strata.runtime_env: Ray's RuntimeEnv / RuntimeEnvConfig backed by the C++
model (strata._native). Messages are compared with `strata env validate`, the
CLI face of the same model. Run by tests/python/run.sh."""

import copy
import json
import os
import pickle
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from strata import _native
from strata.runtime_env import (
    RuntimeEnv,
    RuntimeEnvConfig,
    canonical,
    merge_job_env,
    merge_task_env,
    normalize,
    normalize_task_env,
    validate_no_local_paths,
)


def strata_bin() -> str:
    """$STRATA_BIN, else the binary of the build tree this strata comes from."""
    if os.environ.get("STRATA_BIN"):
        return os.environ["STRATA_BIN"]
    return str(Path(_native.__file__).resolve().parents[2] / "strata")


def cli_validate(env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [strata_bin(), "env", "validate", "--json", json.dumps(env)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def raised(fn):
    """'<ExceptionName>: <message>' of what fn() raises."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the point is to see any
        return f"{type(e).__name__}: {e}"
    raise AssertionError("no exception raised")


class CompareWithCli(unittest.TestCase):
    """The Python classes report what the CLI reports, byte for byte."""

    BAD = [
        {"pip": 1},
        {"pip": {"packages": ["a"], "extra": 1}},
        {"pip": {"pip_check": 1, "packages": ["a"]}},
        {"uv": {"uv_check": False}},
        {"conda": 5},
        {"env_vars": {"A": 1}},
        {"env_vars": ["A"]},
        {"working_dir": 1},
        {"working_dir": "/definitely/not/here"},
        {"working_dir": "s3://bucket/pkg.tar.bz2"},
        {"py_modules": "x"},
        {"py_modules": [1]},
        {"excludes": "*.pyc"},
        {"pip": ["a"], "conda": "base"},
        {"container": {"image": "x"}, "pip": ["a"]},
        {"image_uri": "img", "working_dir": "s3://b/x.zip"},
        {"config": {"setup_timeout_seconds": 0}},
        {"config": {"setup_timeout_seconds": 1.5}},
        {"config": {"eager_install": "yes"}},
        {"config": {"log_files": "x"}},
        {"config": 3},
        {"py_executable": ""},
        {"py_executable": "uv run"},
    ]

    GOOD = [
        {},
        {"pip": ["requests", "requests", "six"]},
        {"pip": {"packages": ["a"], "pip_version": "==23.0"}},
        {"uv": {"packages": ["a"]}},
        {"conda": "base"},
        {"conda": {"dependencies": ["pip"]}},
        {"env_vars": {"B": "2", "A": "1"}, "pip": [], "excludes": []},
        {"working_dir": "s3://bucket/pkg.zip", "py_modules": ["gs://b/m.whl"]},
        {"config": {"setup_timeout_seconds": -1, "eager_install": False}},
        {"nsight": "default", "mpi": {"args": ["-n", "2"]}, "my_plugin": {"x": [1, 2.5, None]}},
        {"env_vars": {"UNICODE": "h\u00e9llo \u2603 \U0001f600"}, "float": 1e100},
        {"container": {"image": "x"}, "env_vars": {"A": "1"}},
    ]

    def test_error_messages_match_the_cli(self):
        for env in self.BAD:
            with self.subTest(env=env):
                cli = cli_validate(env)
                self.assertEqual(cli.returncode, 2, cli.stderr)
                self.assertEqual(raised(lambda: RuntimeEnv(**env)), cli.stderr.rstrip("\n"))
                self.assertEqual(raised(lambda: normalize(env)), cli.stderr.rstrip("\n"))

    def test_canonical_text_matches_the_cli(self):
        for env in self.GOOD:
            with self.subTest(env=env):
                cli = cli_validate(env)
                self.assertEqual(cli.returncode, 0, cli.stderr)
                text = RuntimeEnv(**env).serialize()
                self.assertEqual(text, cli.stdout.rstrip("\n"))
                # serialize() is json.dumps(sort_keys=True) of the normalised dict.
                self.assertEqual(text, json.dumps(normalize(env), sort_keys=True))
                self.assertEqual(canonical(env), text)

    def test_serialize_round_trip(self):
        for env in self.GOOD:
            with self.subTest(env=env):
                text = RuntimeEnv(**env).serialize()
                back = RuntimeEnv.deserialize(text)
                self.assertIsInstance(back, RuntimeEnv)
                self.assertEqual(back.serialize(), text)
                self.assertEqual(json.loads(text), normalize(env))

    def test_uv_list_gains_defaults_when_serialized(self):
        # As in Ray: a uv list normalises to {packages, uv_check}; serialize()
        # validates that dict again, which adds the dict form's defaults.
        env = RuntimeEnv(uv=["a"])
        self.assertEqual(env["uv"], {"packages": ["a"], "uv_check": False})
        expected = {"uv": {"packages": ["a"], "uv_check": False,
                           "uv_pip_install_options": ["--no-cache"]}}
        self.assertEqual(env.serialize(), json.dumps(expected, sort_keys=True))
        self.assertEqual(env.serialize(), cli_validate({"uv": ["a"]}).stdout.rstrip("\n"))

    def test_task_level_rule_matches_the_cli(self):
        env = {"working_dir": "."}
        cli = subprocess.run(
            [strata_bin(), "env", "validate", "--level", "task", "--json", json.dumps(env)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(cli.returncode, 2)
        self.assertEqual(raised(lambda: normalize_task_env(env)), cli.stderr.rstrip("\n"))

    def test_version(self):
        self.assertRegex(_native.version(), r"^\d+\.\d+\.\d+")


class RuntimeEnvBehaviour(unittest.TestCase):
    def test_normalised_fields_in_rays_order(self):
        env = RuntimeEnv(env_vars={"A": "1"}, pip=["x", "x"], my_plugin=1, excludes=["*.log"])
        self.assertIsInstance(env, dict)
        # Plugin fields first, then the validated fields in Ray's order.
        self.assertEqual(list(env), ["my_plugin", "excludes", "pip", "env_vars"])
        self.assertEqual(env["pip"], {"packages": ["x"], "pip_check": False})
        self.assertEqual(env.plugins(), [("my_plugin", 1)])
        self.assertEqual(env.plugin_uris(), [])

    def test_named_fields(self):
        env = RuntimeEnv(nsight="default", pip=None, conda=None)
        self.assertEqual(dict(env), {"_nsight": "default"})
        self.assertEqual(env.nsight(), "default")
        self.assertEqual(RuntimeEnv(), {})
        self.assertEqual(RuntimeEnv(unknown=None), {})  # every value None: cleared

    def test_setitem_validates(self):
        env = RuntimeEnv(pip=["a"])
        with self.assertRaises(TypeError) as e:
            env["pip"] = 1
        self.assertEqual(str(e.exception), raised(lambda: RuntimeEnv(pip=1)).split(": ", 1)[1])
        env["pip"] = ["b"]
        self.assertEqual(env["pip"], {"packages": ["b"], "pip_check": False})
        env["pip"] = []  # the validator drops it: the old value stays
        self.assertEqual(env["pip"]["packages"], ["b"])
        env.set("env_vars", {"X": "y"})
        self.assertEqual(env.env_vars(), {"X": "y"})
        env["anything"] = object  # plugin fields are not validated
        self.assertIs(env["anything"], object)

    def test_update_bypasses_validation_but_serialize_does_not(self):
        env = RuntimeEnv(pip=["a"])
        env.update({"conda": "base"})  # as dict.update on Ray's RuntimeEnv
        with self.assertRaises(ValueError) as e:
            env.serialize()
        self.assertIn("cannot be specified at the same time", str(e.exception))
        env.setdefault("uv", 1)
        self.assertEqual(env["uv"], 1)

    def test_deserialize_does_not_validate(self):
        env = RuntimeEnv.deserialize('{"pip": 1, "z": 2}')
        self.assertEqual(env["pip"], 1)
        with self.assertRaises(TypeError):
            env.serialize()
        with self.assertRaises(TypeError):
            normalize(env)

    def test_validate_false(self):
        env = RuntimeEnv(_validate=False, pip=1, hook=len)
        self.assertEqual(env["pip"], 1)
        self.assertIs(env["hook"], len)

    def test_dict_methods(self):
        env = RuntimeEnv(env_vars={"A": "1"}, working_dir="s3://b/x.zip")
        self.assertEqual(env.get("pip"), None)
        self.assertEqual(env.get("pip", 3), 3)
        self.assertEqual(env.working_dir(), "s3://b/x.zip")
        self.assertEqual(env.py_modules(), [])
        self.assertFalse(env.has_pip())
        self.assertEqual(env.pop("working_dir"), "s3://b/x.zip")
        self.assertTrue(env.remove("env_vars"))
        self.assertFalse(env.remove("env_vars"))
        self.assertEqual(env, {})
        self.assertEqual(RuntimeEnv(pip=["a"]), {"pip": {"packages": ["a"], "pip_check": False}})

    def test_config(self):
        env = RuntimeEnv(config={"setup_timeout_seconds": 10})
        self.assertIsInstance(env["config"], RuntimeEnvConfig)
        self.assertEqual(
            env["config"], {"setup_timeout_seconds": 10, "eager_install": True, "log_files": []}
        )
        plain = env.to_dict()
        self.assertIs(type(plain), dict)
        self.assertIs(type(plain["config"]), dict)
        self.assertIs(type(normalize(env)["config"]), dict)
        env2 = RuntimeEnv(config=RuntimeEnvConfig(eager_install=False))
        self.assertFalse(env2["config"]["eager_install"])
        env2["config"] = {"setup_timeout_seconds": 5}
        self.assertIsInstance(env2["config"], RuntimeEnvConfig)

    def test_runtime_env_config(self):
        self.assertEqual(
            RuntimeEnvConfig(),
            {"setup_timeout_seconds": 600, "eager_install": True, "log_files": []},
        )
        self.assertEqual(RuntimeEnvConfig.default_config(), RuntimeEnvConfig())
        self.assertEqual(RuntimeEnvConfig(-1, False, ["a.log"])["log_files"], ["a.log"])
        for kwargs, expected in [
            ({"setup_timeout_seconds": 0}, {"config": {"setup_timeout_seconds": 0}}),
            ({"setup_timeout_seconds": "1"}, {"config": {"setup_timeout_seconds": "1"}}),
            ({"eager_install": 1}, {"config": {"eager_install": 1}}),
            ({"log_files": [1]}, {"config": {"log_files": [1]}}),
        ]:
            with self.subTest(kwargs=kwargs):
                self.assertEqual(
                    raised(lambda: RuntimeEnvConfig(**kwargs)),
                    cli_validate(expected).stderr.rstrip("\n"),
                )
        parsed = RuntimeEnvConfig.parse_and_validate_runtime_env_config({"eager_install": False})
        self.assertIsInstance(parsed, RuntimeEnvConfig)
        self.assertFalse(parsed["eager_install"])
        self.assertIs(RuntimeEnvConfig.parse_and_validate_runtime_env_config(parsed), parsed)

    def test_requirements_file_is_read(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "requirements.txt")
            path.write_text("requests==2.0\nsix\n")
            env = RuntimeEnv(pip=str(path))
            self.assertEqual(env["pip"]["packages"], ["requests==2.0", "six"])

    def test_local_paths(self):
        with tempfile.TemporaryDirectory() as tmp:
            env = RuntimeEnv(working_dir=tmp, py_modules=[Path(tmp)])
            self.assertEqual(env["py_modules"], [tmp])
            with self.assertRaises(ValueError) as e:
                validate_no_local_paths(env)
            self.assertIn("is not a valid URI", str(e.exception))
            # Pickled without validating again: the directory may be gone
            # where the env is unpickled.
            data = pickle.dumps(env)
        back = pickle.loads(data)
        self.assertIsInstance(back, RuntimeEnv)
        self.assertEqual(back, env)
        self.assertEqual(copy.deepcopy(env), env)

    def test_module_objects_in_py_modules(self):
        env = normalize({"py_modules": [unittest]})
        self.assertEqual(env["py_modules"], [os.path.dirname(unittest.__file__)])

    def test_setup_hook_callable_is_kept(self):
        def hook():
            pass

        env = RuntimeEnv(worker_process_setup_hook=hook, env_vars={"A": "1"})
        self.assertIs(env["worker_process_setup_hook"], hook)
        self.assertIs(normalize(env)["worker_process_setup_hook"], hook)
        with self.assertRaises(TypeError) as e:
            env.serialize()
        self.assertIn("not JSON serializable", str(e.exception))
        merged = merge_task_env(env, {"env_vars": {"B": "2"}})
        self.assertIs(merged["worker_process_setup_hook"], hook)

    def test_non_json_values_in_validated_fields(self):
        with self.assertRaises(TypeError) as e:
            RuntimeEnv(env_vars={"A": object()})
        self.assertIn("runtime_env['env_vars']", str(e.exception))
        with self.assertRaises(TypeError):
            RuntimeEnv(env_vars={1: "a"})


class PlainDicts(unittest.TestCase):
    def test_plain_dict_equals_runtime_env(self):
        spec = {"pip": ["a"], "env_vars": {"A": "1"}, "config": {"eager_install": False}}
        self.assertEqual(normalize(spec), normalize(RuntimeEnv(**spec)))
        self.assertEqual(normalize(spec), RuntimeEnv(**spec).to_dict())
        self.assertIs(type(normalize(spec)), dict)
        self.assertEqual(spec["pip"], ["a"])  # the argument is not modified

    def test_not_specified(self):
        for falsy in (None, {}, RuntimeEnv(), [], ""):
            self.assertEqual(normalize(falsy), {})

    def test_not_a_dict(self):
        cli = cli_validate([1])
        self.assertEqual(raised(lambda: normalize([1])), cli.stderr.rstrip("\n"))
        with self.assertRaises(TypeError):
            normalize("pip")


class Merges(unittest.TestCase):
    def test_task_inheritance(self):
        parent = normalize({"pip": ["requests", "chess"], "env_vars": {"A": "a", "B": "b"}})
        child = normalize({"pip": ["torch"], "env_vars": {"B": "new", "C": "c"}})
        merged = merge_task_env(parent, child)
        self.assertEqual(merged["pip"]["packages"], ["torch"])
        self.assertEqual(merged["env_vars"], {"A": "a", "B": "new", "C": "c"})
        self.assertEqual(merge_task_env(parent, {}), parent)
        self.assertEqual(merge_task_env(None, child), child)

    def test_task_inheritance_matches_the_cli(self):
        parent = {"pip": ["a"], "env_vars": {"A": "a"}}
        child = {"env_vars": {"B": "b"}, "working_dir": "s3://b/x.zip"}
        cli = subprocess.run(
            [strata_bin(), "env", "merge", "--mode", "task", "--parent", json.dumps(parent),
             "--child", json.dumps(child)],
            capture_output=True, text=True, timeout=30,
        )
        self.assertEqual(cli.returncode, 0, cli.stderr)
        merged = merge_task_env(normalize(parent), normalize(child))
        self.assertEqual(json.dumps(merged, sort_keys=True), cli.stdout.rstrip("\n"))

    def test_job_merge(self):
        job = {"env_vars": {"A": "1"}, "pip": ["a"]}
        ok = merge_job_env(job, {"env_vars": {"B": "2"}, "working_dir": "s3://b/x.zip"}, False)
        self.assertEqual(ok["env_vars"], {"A": "1", "B": "2"})
        driver = {"env_vars": {"A": "2"}}
        cli = subprocess.run(
            [strata_bin(), "env", "merge", "--mode", "job", "--parent", json.dumps(job),
             "--child", json.dumps(driver)],
            capture_output=True, text=True, timeout=30,
            env={k: v for k, v in os.environ.items() if k != "STRATA_OVERRIDE_JOB_RUNTIME_ENV"},
        )
        self.assertEqual(cli.returncode, 2)
        message = raised(lambda: merge_job_env(normalize(job), normalize(driver), False))
        self.assertEqual(message, cli.stderr.rstrip("\n"))
        self.assertTrue(message.startswith("ValueError: Failed to merge the Job's runtime env"))
        self.assertEqual(merge_job_env(job, driver, True)["env_vars"], {"A": "2"})
        os.environ["STRATA_OVERRIDE_JOB_RUNTIME_ENV"] = "1"
        try:
            self.assertEqual(merge_job_env(job, driver)["env_vars"], {"A": "2"})
        finally:
            del os.environ["STRATA_OVERRIDE_JOB_RUNTIME_ENV"]


class NativeModule(unittest.TestCase):
    def test_errors_map_to_python_exceptions(self):
        with self.assertRaises(ValueError) as e:
            _native.runtime_env_create("{not json")
        self.assertIn("Expecting property name", str(e.exception))
        with self.assertRaises(ValueError):
            _native.resolve_head_address("ftp://x")
        with self.assertRaises(ConnectionError):
            # Nothing listens on port 1.
            _native.upload_local_paths(
                json.dumps({"working_dir": os.path.dirname(__file__)}), "http://127.0.0.1:1", None
            )

    def test_insertion_order_and_numbers_survive(self):
        text = _native.runtime_env_create('{"b": 1, "a": [1.5, 1e100, NaN], "c": 18446744073709551615}')
        self.assertEqual(text, '{"b": 1, "a": [1.5, 1e+100, NaN], "c": 18446744073709551615}')

    def test_loads_in_this_interpreter(self):
        self.assertTrue(_native.__file__.endswith(".so"))
        self.assertIn(f"cpython-{sys.version_info[0]}{sys.version_info[1]}", _native.__file__)


if __name__ == "__main__":
    unittest.main()
