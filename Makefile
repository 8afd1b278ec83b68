# The two set-up commands of the README's quickstart: `make demo` and `make test`.
# Both are idempotent and install what they need (Debian packages as root, Python deps in .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

SDK_V2_STAMP := $(VENV)/sagemaker-sdk-v2/.installed

.PHONY: setup demo test soak check bench lock clean

setup: $(STAMP)

# Installs from the lock files in requirements/ (hashes checked); `make lock` refreshes them.
$(STAMP): pyproject.toml requirements/lock.txt scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

# The SageMaker SDK v2 the README's SDK section uses (run by the docs test), in a venv of its own.
$(SDK_V2_STAMP): requirements/sagemaker-sdk-v2.txt $(STAMP)
	WITH_SDK_V2=1 bash scripts/setup.sh $(VENV)
	touch $(SDK_V2_STAMP)

lock:
	bash scripts/lock.sh $(VENV)

demo: setup
	$(VENV)/bin/forklift demo

test: setup $(SDK_V2_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The slow tier: mixed load with job and endpoint churn on SQLite and PostgreSQL, FORKLIFT_SOAK_SECONDS
# (600) each; `make test` leaves these out.
soak: setup
	$(PY) -m pytest -m soak tests/inference/test_inference_soak.py $(PYTEST_ARGS)

# Lint (ruff), types (mypy) and the layering contract (import-linter): CI runs these beside the tests.
check: setup
	bash scripts/check.sh $(VENV)

# Speed against baselines measured in the same run (not part of the tests).
bench: setup
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(PY) bench/pull.py
	$(PY) bench/unpack.py
	$(PY) bench/start.py
	$(PY) bench/api.py
	$(PY) bench/invoke.py
	$(PY) bench/load.py
	$(PY) bench/s3.py
	$(PY) bench/cli.py

clean:
	rm -rf $(VENV) build *.egg-info
