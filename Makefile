# The two set-up commands of the README's quickstart: `make demo` and `make test`.
# Both are idempotent and install what they need (Debian packages as root, Python deps in .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

demo: setup
	$(VENV)/bin/forklift demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Speed against baselines measured in the same run (not part of the tests).
bench: setup
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(PY) bench/pull.py
	$(PY) bench/unpack.py
	$(PY) bench/start.py
	$(PY) bench/api.py
	$(PY) bench/invoke.py

clean:
	rm -rf $(VENV) build *.egg-info
