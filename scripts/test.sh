#!/usr/bin/env bash
# Run every check and the whole test suite (unit, functional, lab), as root.
# Extra arguments go to pytest, e.g. scripts/test.sh -m unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/pytest "$@"
