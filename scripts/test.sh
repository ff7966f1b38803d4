#!/usr/bin/env bash
# Runs every test: unit and property tests, then the black-box tests that start real shoal
# processes and talk to them with the redis crate, redis-cli and redis-py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
exec cargo test --workspace "$@"
