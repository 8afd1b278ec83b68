#!/usr/bin/env bash
# Installs forklift's system packages (Debian) and Python deps into a virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
# postgresql: the tests start a throwaway server of their own from its binaries (tests/fixtures/postgres.py);
# nothing here needs the cluster the package may set up.
APT_PACKAGES=(docker-registry runc skopeo umoci busybox-static iproute2 iptables zstd openssl ca-certificates python3-venv
              postgresql)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: need root to install Debian packages: ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
# Everything from the lock files (`make lock` refreshes them), hashes checked, nothing resolved here:
# a new upstream release cannot change what gets installed.
install_locked() {  # VENV LOCKFILE
    [ -x "$1/bin/python" ] || "$PYTHON" -m venv "$1"
    "$1/bin/python" -m pip install -q --require-hashes --no-deps -r "$2"
}
install_locked "$VENV" requirements/lock.txt
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -m pip check || { echo "setup: requirements/lock.txt does not satisfy pyproject.toml: run make lock" >&2; exit 1; }
if [ "${WITH_SDK_V2:-0}" = 1 ]; then
    # The SageMaker SDK v2 for the README's SDK section (the docs test); it conflicts with the v3
    # SDK the catalog is generated from, so it gets a virtual environment of its own.
    install_locked "$VENV/sagemaker-sdk-v2" requirements/sagemaker-sdk-v2.txt
fi
