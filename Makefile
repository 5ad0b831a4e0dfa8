# The two commands: `make run` (set up, train if needed, run) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install train run shell test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

train: install
	$(PY) -m bot train

run: train
	@echo
	@echo "The assistant is trained. Open the chat page printed below (log in as a sandbox"
	@echo "customer such as C1001 张伟, or stay anonymous). Terminal chat instead: make shell"
	$(PY) -m bot run

shell: train
	$(PY) -m bot shell --customer C1001

test: install
	$(PY) -m pytest -q -rs

# ruff (lint rules and formatting) and mypy --strict on bot/ and actions/ (pyproject.toml);
# also before each commit with pre-commit (.pre-commit-config.yaml).
lint: install
	$(PY) -m ruff check bot tests bench actions
	$(PY) -m ruff format --check bot tests bench actions
	$(PY) -m mypy

bench: install train
	$(PY) bench/nlu_latency.py
	$(PY) bench/policy_latency.py
	$(PY) bench/engine_throughput.py
	$(PY) bench/turn_latency.py

clean:
	rm -rf models/*.tar.gz models/.unpacked results
