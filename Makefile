# The two commands: `make run` (set up, train if needed, run) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install train run test lint bench clean

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
	@echo "The NLU model is trained. Chat with it:  $(VENV)/bin/bot shell nlu"
	@echo "Parse one message:                        $(VENV)/bin/bot parse \"查下尾号1234的余额\""
	$(PY) -m bot shell nlu

test: install
	$(PY) -m pytest -q -rs

lint: install
	$(PY) -m ruff check bot tests bench
	$(PY) -m mypy

bench: install
	$(PY) bench/nlu_latency.py

clean:
	rm -rf models/*.tar.gz models/.unpacked results
