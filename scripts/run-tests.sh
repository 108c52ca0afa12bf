#!/usr/bin/env bash
# Run the compiled test files whose TypeScript source still exists (tsc never deletes
# outputs of removed sources). Extra arguments narrow the run: scripts/run-tests.sh test/vault
set -euo pipefail
cd "$(dirname "$0")/.."
roots=("${@:-test}")
files=()
while IFS= read -r src; do
  files+=("dist/${src%.ts}.js")
done < <(find "${roots[@]}" -name '*.test.ts' | sort)
[ ${#files[@]} -gt 0 ] || { echo "no test files under ${roots[*]}" >&2; exit 1; }
# The packaging and example tests install the packed packages into fresh apps; the first
# install of each set (the vault's builds native modules, ~2 min) starts now, beside the
# first test files, instead of inside a test file's time limit (test/packages/prepare.ts).
prep=
if printf '%s\n' "${files[@]}" | grep -q 'dist/test/\(packages\|examples\)/'; then
  mkdir -p .tmp
  node dist/test/packages/prepare.js >.tmp/prepare-installs.log 2>&1 &
  prep=$!
fi
# Two files at a time on a 2-core machine (three took as long: the suite keeps both cores
# busy); a hung test fails after 5 minutes instead of hanging CI.
rc=0
node --test --test-concurrency=2 --test-timeout=300000 "${files[@]}" || rc=$?
if [ -n "$prep" ] && ! wait "$prep"; then
  echo "preparing the package installs failed (the tests made their own):" >&2
  cat .tmp/prepare-installs.log >&2
fi
exit "$rc"
