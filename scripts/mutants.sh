#!/usr/bin/env bash
# Mutation testing of the sync core (a command, not part of CI's default run): cargo-mutants
# changes src/sync/ one small edit at a time (a condition flipped, a `>` made `>=`, a function
# returning a default) and runs the unit tests against each mutant. Every viable mutant must be
# caught, or be named in the README ("Mutation testing") as equivalent, with the reason.
# Takes about two hours on 2 cores. Results in $MUTANTS_OUT (default /tmp/dirsync-mutants).
#
#   ./scripts/mutants.sh [extra cargo-mutants flags]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
out=${MUTANTS_OUT:-/tmp/dirsync-mutants}
mkdir -p "$out"
cargo mutants --file 'src/sync/**/*.rs' --output "$out" "$@" -- --lib
