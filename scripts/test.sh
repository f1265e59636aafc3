#!/usr/bin/env bash
# Install everything the tests need, start the services they use, and run the test suite.
#   usage: scripts/test.sh [pytest args...]
# This is the README's test command and what CI runs (.ci/run). pytest's "no tests collected"
# (exit 5) fails here like any other failure.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 1
bash scripts/setup.sh test || exit 1
if [ -f scripts/services.sh ]; then
  # PostgreSQL for the server tests; prints the URL the tests read.
  LOOPJAM_TEST_PG_URL=$(bash scripts/services.sh) || { echo "[test] services failed to start" >&2; exit 1; }
  export LOOPJAM_TEST_PG_URL
fi
echo "[test] running pytest" >&2
.venv/bin/python -m pytest "$@"
status=$?
if [ $status -eq 5 ]; then
  echo "[test] pytest collected no tests: failing" >&2
  exit 1
fi
exit $status
