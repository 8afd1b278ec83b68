#!/usr/bin/env bash
# Refreshes the lock files that scripts/setup.sh installs from (`make lock`): every package pinned with
# its hashes, resolved for every platform forklift supports, so an install made today and one made
# next month get the same versions. pyproject.toml keeps the ranges for people who install forklift
# as a package; edit those, then run this.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
UV_VERSION=0.13.9
PYTHON_VERSION=3.11

[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "uv==$UV_VERSION"
compile() {
    "$VENV/bin/uv" pip compile --quiet --generate-hashes --universal --python-version "$PYTHON_VERSION" \
        --custom-compile-command "make lock" "$@"
}
# forklift's own dependencies with the test extra, plus what building forklift itself takes
# (the editable install runs without build isolation, so the build backend is pinned here too).
compile pyproject.toml requirements/build.in --extra test -o requirements/lock.txt
# The SageMaker Python SDK v2 the README's SDK section is written for; it cannot share a
# virtual environment with the v3 SDK the catalog is generated from, so the docs test runs it in its own.
compile requirements/sagemaker-sdk-v2.in -o requirements/sagemaker-sdk-v2.txt
