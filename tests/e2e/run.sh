#!/usr/bin/env bash
# Runs every end-to-end suite (tests/e2e/*_test.sh) against the real binary
# named by STRATA_BIN and prints one "N passed, N failed" line at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${STRATA_BIN:?set STRATA_BIN to the strata binary}"
export STRATA_BIN

passed=0
failed=0
for suite in "$here"/*_test.sh; do
  echo "== $(basename "$suite")"
  out=$(bash "$suite" 2>&1)
  status=$?
  echo "$out"
  p=$(grep -c '^PASS ' <<<"$out")
  f=$(grep -c '^FAIL ' <<<"$out")
  passed=$((passed + p))
  failed=$((failed + f))
  if [ $status -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL suite $(basename "$suite") exited $status"
    failed=$((failed + 1))
  fi
done
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
