#!/usr/bin/env bash
# Runs the Python SDK's tests (tests/python/test_*.py, plain unittest) against
# a build tree: PYTHONPATH=$BUILD/python, the `strata` binary of $STRATA_BIN
# (default $BUILD/strata). BUILD defaults to build/. Exits non-zero when a
# test fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$root/build}" && pwd)
export STRATA_BIN=${STRATA_BIN:-$BUILD/strata}
if ! compgen -G "$BUILD/python/strata/_native*.so" >/dev/null; then
  echo "no strata._native in $BUILD/python/strata: build with pybind11-dev installed" >&2
  exit 1
fi
export PYTHONPATH=$BUILD/python${PYTHONPATH:+:$PYTHONPATH}
cd "$root"
# The extension must load in Debian's python3 as well as in the node's.
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 -c 'import strata.runtime_env, strata.job_submission, cloudpickle'
fi
# unittest's own summary is not a closing line CI reads; print "N passed, N failed" too.
python3 - <<'PY'
import sys, unittest
result = unittest.TextTestRunner(verbosity=2).run(unittest.defaultTestLoader.discover("tests/python"))
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
print(f"python: {result.testsRun - failed - len(result.skipped)} passed, {failed} failed, {len(result.skipped)} skipped")
sys.exit(0 if result.wasSuccessful() else 1)
PY
