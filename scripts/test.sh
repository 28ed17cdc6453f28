#!/usr/bin/env bash
# THE test command: `python3 -m pytest` from the repository root (README and .ci/run use it).
# Arguments pass through to pytest. Pytest's exit code 5 ("no tests collected") is a failure:
# a selection that runs nothing proves nothing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 -m pytest "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "error: pytest collected no tests (exit 5); treating as a failure" >&2
fi
exit "$rc"
