#!/usr/bin/env bash
# Model-checks model/vault.pml with spin (exhaustive within its bounds), then checks that
# each seeded bug (a mutant of the protocol) is caught: a model that cannot fail proves
# nothing. Run by `make model` and `make test`. Needs spin and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v spin >/dev/null || { echo "spin is required: apt-get install spin (make test-deps)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "gcc is required to compile the spin verifier" >&2; exit 1; }
work=.tmp/model
rm -rf "$work" && mkdir -p "$work"
cp model/vault.pml "$work/"
# Bounds: 2 clients (owner, attacker), 2 nodes, limit 2, 2 requests per client, clock 0..2.
BOUNDS=(-DSENDS=2 -DMAXT=2 -DLIMIT=2)
run() { # name, expect (pass|fail), extra -D flags...
  local name=$1 expect=$2
  shift 2
  (
    cd "$work"
    spin -a "${BOUNDS[@]}" "$@" vault.pml >/dev/null
    # Mutants stop at their first violation: optimising their verifier is not worth it.
    gcc "$([ "$expect" = pass ] && echo -O2 || echo -O0)" -DSAFETY -DCOLLAPSE -o "pan-$name" pan.c
    ./"pan-$name" -m400000 >"pan-$name.out" 2>&1 || true
  )
  local out="$work/pan-$name.out"
  local errors states secs
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | tail -1)
  states=$(sed -n 's/^ *\([0-9e.+]*\) states, stored.*/\1/p' "$out" | tail -1)
  secs=$(sed -n 's/^pan: elapsed time \([0-9.]*\).*/\1/p' "$out" | tail -1)
  if grep -q 'max search depth too small' "$out"; then
    echo "model $name: search depth exceeded (raise -m): not exhaustive" >&2
    exit 1
  fi
  if [ "$expect" = pass ]; then
    if [ "$errors" != 0 ]; then
      echo "model $name: VIOLATION — spin trail follows" >&2
      (cd "$work" && spin -t -p "${BOUNDS[@]}" "$@" vault.pml | tail -60) >&2
      exit 1
    fi
    echo "model $name: all properties hold (${states} states, ${secs} s, exhaustive)"
  else
    if [ "$errors" = 0 ] || ! grep -q 'assertion violated' "$out"; then
      echo "model $name: the seeded bug was NOT caught" >&2
      exit 1
    fi
    echo "model $name: caught ($(grep -m1 'assertion violated' "$out" | sed 's/^pan:1: //'))"
  fi
}
run protocol pass
run stale-replay fail -DBUG_STALE_REPLAY
run no-idempotency fail -DBUG_NO_IDEMPOTENCY
run pacing-in-node fail -DBUG_PACING_IN_NODE
run blind-write fail -DBUG_BLIND_WRITE
