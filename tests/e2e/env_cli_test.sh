#!/usr/bin/env bash
# `strata env validate` / `strata env merge`: the command-line contract.
source "$(dirname "$0")/lib.sh"
S=$STRATA_BIN
cd "$WORK"

run $S env validate --json '{"pip": ["requests", "requests"], "env_vars": {"B": "2", "A": "1"}}'
expect_ok "validate normalises pip and sorts keys" \
  '{"env_vars": {"A": "1", "B": "2"}, "pip": {"packages": ["requests"], "pip_check": false}}'

run $S env validate --json '{}'
expect_ok "empty env" '{}'

printf 'six\n\nrequests # comment\n' > requirements.txt
mkdir -p project
cat > env.yaml <<'YAML'
working_dir: project
pip: requirements.txt
config: {setup_timeout_seconds: -1, eager_install: no}
YAML
run $S env validate --file env.yaml
expect_ok "validate --file YAML reads requirements relative to cwd" \
  '{"config": {"eager_install": false, "log_files": [], "setup_timeout_seconds": -1}, "pip": {"packages": ["six", "", "requests # comment"], "pip_check": false}, "working_dir": "project"}'

echo '{"uv": ["a"], "nsight": "default"}' > env.json
run $S env validate --file env.json
expect_ok "validate --file JSON (serialize re-validates, so uv gains its dict defaults as in Ray)" '{"_nsight": "default", "uv": {"packages": ["a"], "uv_check": false, "uv_pip_install_options": ["--no-cache"]}}'

run bash -c "echo '{\"env_vars\": {\"X\": \"\\u00e9\"}}' | $S env validate -"
expect_ok "validate from stdin escapes non-ASCII like Python" '{"env_vars": {"X": "\u00e9"}}'

run $S env validate --json '{"pip": 1}'
expect_error "pip type error" 2 "TypeError: runtime_env['pip'] must be of type str or List[str], got <class 'int'>"

run $S env validate --json '{"pip": ["a"], "conda": "x"}'
expect_error "pip and conda conflict" 2 "ValueError: The 'pip' field, 'uv' field, and 'conda' field of runtime_env cannot be specified at the same time."

run $S env validate --json '{"working_dir": "missing_dir"}'
expect_error "missing working_dir" 2 "ValueError: missing_dir is not a valid path."

run $S env validate --json '{"working_dir": "project"}' --level task
expect_error "task level rejects local paths" 2 'ValueError: project is not a valid URI. Passing directories or modules to be dynamically uploaded is only supported at the job level (i.e., passed to `ray.init`).'

run $S env validate --json '{"working_dir": "s3://bucket/pkg.zip"}' --level task
expect_ok "task level accepts URIs" '{"working_dir": "s3://bucket/pkg.zip"}'

run $S env validate --json '[1]'
expect_error "not a dict" 2 "TypeError: runtime_env must be dict or RuntimeEnv, but got: <class 'list'>"

run $S env validate --json '{"pip": '
expect_error_prefix "bad JSON" 2 "ValueError: invalid JSON in --json: "

run $S env validate --file does-not-exist.yaml
expect_error_prefix "missing --file" 2 "NotFoundError: cannot read --file does-not-exist.yaml"

run $S env validate
expect_error_prefix "no input given" 2 ""

run $S env merge --mode task --parent '{"pip": ["requests", "chess"], "env_vars": {"A": "a", "B": "b"}}' \
  --child '{"pip": ["torch", "ray[serve]"], "env_vars": {"B": "new", "C": "c"}}'
expect_ok "task merge (Ray docs example)" \
  '{"env_vars": {"A": "a", "B": "new", "C": "c"}, "pip": {"packages": ["torch", "ray[serve]"], "pip_check": false}}'

run $S env merge --mode task --parent '{"env_vars": {"A": "a"}}' --child '{}'
expect_ok "task merge with empty child inherits" '{"env_vars": {"A": "a"}}'

run $S env merge --mode task --parent '{}' --child '{"working_dir": "project"}'
expect_error_prefix "task merge rejects a local child working_dir" 2 "ValueError: project is not a valid URI."

run $S env merge --mode job --parent '{"pip": ["a"]}' --child '{"env_vars": {"X": "1"}}'
expect_ok "job merge without conflict" '{"env_vars": {"X": "1"}, "pip": {"packages": ["a"], "pip_check": false}}'

run $S env merge --mode job --parent '{"env_vars": {"X": "1"}}' --child '{"env_vars": {"X": "2"}}'
expect_error_prefix "job merge conflict" 2 "ValueError: Failed to merge the Job's runtime env"

run $S env merge --mode job --parent '{"env_vars": {"X": "1"}}' --child '{"env_vars": {"X": "2"}}' --override
expect_ok "job merge --override" '{"env_vars": {"X": "2"}}'

run env STRATA_OVERRIDE_JOB_RUNTIME_ENV=1 $S env merge --mode job --parent '{"pip": ["a"]}' --child '{"pip": ["b"]}'
expect_ok "job merge with STRATA_OVERRIDE_JOB_RUNTIME_ENV=1" '{"pip": {"packages": ["b"], "pip_check": false}}'
