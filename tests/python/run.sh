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
python3 -m unittest discover -s tests/python -v
