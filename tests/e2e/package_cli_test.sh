#!/usr/bin/env bash
# `strata package list|uri|create|unpack`: the command-line contract.
source "$(dirname "$0")/lib.sh"
S=$STRATA_BIN
cd "$WORK"

mkdir -p proj/src proj/.git proj/__pycache__ proj/logs proj/empty
echo 'print("hi")' > proj/main.py
echo 'x = 1' > proj/src/util.py
echo 'ref' > proj/.git/HEAD
echo 'junk' > proj/__pycache__/m.pyc
echo 'log' > proj/logs/run.log
printf '*.log\n!keep.log\n' > proj/.gitignore
echo 'kept' > proj/keep.log
echo 'secret' > proj/secret.txt

run $S package list proj --exclude secret.txt
expect_ok "list applies .gitignore, negation, defaults and --exclude" "$(printf '.gitignore\nkeep.log\nmain.py\nsrc/util.py')"

run $S package uri proj
uri1=$OUT
if [[ "$RC" -eq 0 && "$uri1" =~ ^gcs://_strata_pkg_[0-9a-f]{32}\.zip$ ]]; then pass "uri shape"; else fail "uri shape" "[$uri1] $ERR"; fi

cp -r proj proj_copy
touch -d '2001-01-01' proj_copy/main.py
run $S package uri proj_copy
expect_ok "same content, same uri" "$uri1"

echo 'print("changed")' > proj_copy/main.py
run $S package uri proj_copy
if [ "$RC" -eq 0 ] && [ "$OUT" != "$uri1" ]; then pass "edit changes uri"; else fail "edit changes uri" "$OUT"; fi

run $S package create proj -o out1.zip
expect_ok "create prints the uri" "$uri1"
run $S package create proj -o out2.zip
if cmp -s out1.zip out2.zip; then pass "create is deterministic"; else fail "create is deterministic" "bytes differ"; fi
if python3 -m zipfile -t out1.zip >/dev/null 2>&1; then pass "python zipfile accepts the archive"; else fail "python zipfile accepts the archive" "zipfile -t failed"; fi

run $S package unpack out1.zip unpacked
listed=$($S package list proj)
got=$(cd unpacked 2>/dev/null && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
if [ "$RC" -eq 0 ] && [ "$got" == "$listed" ] && [ -d unpacked/empty ] && cmp -s unpacked/main.py proj/main.py; then
  pass "unpack local archive restores the listed files and empty dirs"
else
  fail "unpack local archive restores the listed files and empty dirs" "exit $RC [$got] vs [$listed] $ERR"
fi

# Remote URIs strip a single top-level directory (Ray's rule).
mkdir -p srv/top/inner && echo 'data' > srv/top/inner/f.txt
(cd srv && python3 -c 'import zipfile; z=zipfile.ZipFile("pkg.zip","w"); z.write("top/inner/f.txt"); z.close()')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd srv && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
server=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
run $S package unpack "http://127.0.0.1:$port/pkg.zip" remote
if [ "$RC" -eq 0 ] && [ "$(cat remote/inner/f.txt 2>/dev/null)" == "data" ]; then pass "unpack http URI strips the top-level dir"; else fail "unpack http URI strips the top-level dir" "exit $RC $ERR"; fi
run $S package unpack "http://127.0.0.1:$port/missing.zip" remote2
expect_error_prefix "unpack 404 names the URI" 2 "error: Failed to download http://127.0.0.1:$port/missing.zip"
kill $server 2>/dev/null; wait $server 2>/dev/null

run $S package list does-not-exist
expect_error_prefix "list of a missing dir" 2 "error: "
[[ "$ERR" == *does-not-exist* ]] && pass "missing dir error names the path" || fail "missing dir error names the path" "$ERR"

printf 'garbage' > bad.zip
run $S package unpack bad.zip bad_out
expect_error_prefix "corrupt archive rejected" 2 "error: "
[ ! -e bad_out ] && pass "nothing left after a corrupt archive" || fail "nothing left after a corrupt archive" "bad_out exists"

head -c 3000 /dev/zero > proj/zeros.bin
run env STRATA_MAX_PACKAGE_SIZE=1000 $S package uri proj
expect_error_prefix "size limit" 2 "error: Package size (0.00MiB) exceeds the maximum size of 0.00MiB."
[[ "$ERR" == *zeros.bin* ]] && pass "size limit names the largest file" || fail "size limit names the largest file" "$ERR"
