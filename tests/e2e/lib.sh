# Helpers for end-to-end suites: each check prints "PASS name" or
# "FAIL name" with what differed.
# shellcheck shell=bash

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d /tmp/strata-e2e-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# run CMD...: captures stdout, stderr and exit code of the command.
run() {
  "$@" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  OUT=$(cat "$WORK/out")
  ERR=$(cat "$WORK/err")
}

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# expect_ok NAME EXPECTED_STDOUT
expect_ok() {
  if [ "$RC" -eq 0 ] && [ "$OUT" == "$2" ]; then
    pass "$1"
  else
    fail "$1" "exit $RC, stdout [$OUT], stderr [$ERR], expected [$2]"
  fi
}

# expect_error NAME EXIT_CODE EXPECTED_FIRST_STDERR_LINE
expect_error() {
  local first
  first=$(head -n 1 <<<"$ERR")
  if [ "$RC" -eq "$2" ] && [ "$first" == "$3" ] && [ -z "$OUT" ]; then
    pass "$1"
  else
    fail "$1" "exit $RC, stdout [$OUT], first stderr line [$first], expected exit $2 and [$3]"
  fi
}

# expect_error_prefix NAME EXIT_CODE PREFIX_OF_FIRST_STDERR_LINE
expect_error_prefix() {
  local first
  first=$(head -n 1 <<<"$ERR")
  if [ "$RC" -eq "$2" ] && [[ "$first" == "$3"* ]]; then
    pass "$1"
  else
    fail "$1" "exit $RC, first stderr line [$first], expected exit $2 and prefix [$3]"
  fi
}

# free_port: prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL: waits up to 5 s for URL to answer.
wait_http() {
  for _ in $(seq 50); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}
