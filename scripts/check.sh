#!/usr/bin/env bash
# The checks CI makes beside the tests: lint (ruff), types (mypy, for the packages pyproject.toml's
# [tool.mypy] lists) and the layering contract (import-linter). Runs from the
# repository root with the tools of the virtual environment given as $1 (default .venv); prints one
# line per check, the output of any that fails above its line, and exits non-zero if one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
failed=0

check() {  # check NAME PROGRAM [ARGS...]
    local name=$1 program=$VENV/bin/$2 output status
    shift 2
    if [ ! -x "$program" ]; then
        echo "$name: FAILED ($program not found)"
        failed=1
        return
    fi
    output=$("$program" "$@" 2>&1)
    status=$?
    if [ "$status" -eq 0 ]; then
        echo "$name: ok"
    else
        printf '%s\n' "$output"
        echo "$name: FAILED (exit status $status)"
        failed=1
    fi
}

check ruff ruff check src tests bench scripts
check mypy mypy  # what to check and how strictly: [tool.mypy] in pyproject.toml
# the layering contract ([tool.importlinter] in pyproject.toml), on this tree's sources whatever the
# environment has installed
PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" check import-linter lint-imports
exit "$failed"
