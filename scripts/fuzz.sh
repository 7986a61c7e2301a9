#!/usr/bin/env bash
# Runs the property tests of tests/it/fuzz.rs with many cases (the suite runs 256 per property).
# Usage: scripts/fuzz.sh [cases per property, default 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
PROPTEST_CASES=${1:-100000} cargo test --locked --release --test it -- fuzz:: --nocapture
