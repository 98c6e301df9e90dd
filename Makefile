# Two commands do all the set-up on a fresh machine (Java 17 is the only prerequisite):
#   make demo   installs into .venv, generates data and runs the whole pipeline
#   make test   installs into .venv (and, as root, Debian's chromium for the browser tests), runs the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	@sh scripts/require-java.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dashboard,dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/custseg demo

test: $(STAMP)
	@sh scripts/install-browser.sh
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf lakehouse data mlflow.db mlruns report.html
