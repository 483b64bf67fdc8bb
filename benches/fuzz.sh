#!/usr/bin/env bash
# A long protocol fuzz campaign: the suite's tests/integration/fuzz.rs with
# more messages. Needs the demo data (sql/load.sh), like the suite.
#
#   bash benches/fuzz.sh                 # 200000 messages, seed from the clock
#   bash benches/fuzz.sh 1000000         # a million
#   TAUTAN_FUZZ_SEED=42 bash benches/fuzz.sh 50000   # replay a seed
#
# Prints the seed, messages sent, connections, panics caught and XX000
# answers; exits non-zero on any panic, XX000, or a server that no longer
# answers.
set -euo pipefail
cd "$(dirname "$0")/.."
export TAUTAN_FUZZ_MESSAGES="${1:-200000}"
export TAUTAN_FUZZ_SEED="${TAUTAN_FUZZ_SEED:-random}"
exec cargo test --test integration fuzz:: -- --nocapture
