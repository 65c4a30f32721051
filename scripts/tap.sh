#!/usr/bin/env bash
# Runs the tap suite and ends with one plain "N passed, N failed" line that
# any CI can read, keeping tap's exit status.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
npx tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total: ' "$log" | tail -n 1)
rm -f "$log"
pass=$(printf '%s' "$summary" | sed -nE 's/.*pass: ([0-9]+).*/\1/p')
fail=$(printf '%s' "$summary" | sed -nE 's/.*fail: ([0-9]+).*/\1/p')
skip=$(printf '%s' "$summary" | sed -nE 's/.*skip: ([0-9]+).*/\1/p')
echo "${pass:-0} passed, ${fail:-0} failed${skip:+, $skip skipped}"
exit "$status"
