#!/usr/bin/env bash
# The canonical serialization must be byte-identical to what Python's
# json.dumps(obj, sort_keys=True) prints for the same normalised env.
source "$(dirname "$0")/lib.sh"
S=$STRATA_BIN
cd "$WORK"
PY=${PYTHON:-python3}

check() {
  local name=$1 input=$2
  run $S env validate --json "$input"
  local expected
  expected=$("$PY" -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), sort_keys=True))' "$OUT")
  if [ "$RC" -eq 0 ] && [ "$OUT" == "$expected" ]; then
    pass "$name"
  else
    fail "$name" "strata [$OUT] python [$expected] stderr [$ERR]"
  fi
}

check "unicode and escapes" '{"env_vars": {"Z": "tab\there", "A": "quote\" back\\ ✓ 😀 \u0001 \u007f"}}'
check "floats and ints" '{"plugin": {"f": [0.1, 1e-05, 1e16, 123456789.125, -0.0, 1e300, 5e-324], "i": [0, -7, 18446744073709551615]}}'
check "nested key order" '{"zeta": {"b": 1, "a": {"d": [], "c": {}}}, "alpha": null, "env_vars": {"b": "", "a": "x"}}'
check "config bool timeout" '{"config": {"setup_timeout_seconds": true}}'
