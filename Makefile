# RAT: two commands for a newcomer (`make run`, `make test`); the rest is for developers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
APP    := $(VENV)/.app-$(HASH)
DEV    := $(VENV)/.dev-$(HASH)

.DEFAULT_GOAL := help
.PHONY: help run test lint bench clean browser sandbox

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(APP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(APP)

run: $(APP) ## Start RAT on the embedded default (honours RAT_HOST, RAT_PORT, RAT_DATA_DIR)
	exec $(BIN)/rat serve

browser: ## Install Debian's Chromium for the browser tests (needs root or sudo)
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

sandbox: ## Install Debian's bubblewrap for the pipeline sandbox (needs root or sudo)
	@command -v bwrap >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq bubblewrap >/dev/null; }

test: $(DEV) browser sandbox ## Install dev deps and run every test (real Postgres, S3 server, browser)
	$(BIN)/python -m pytest -q tests

lint: $(DEV) ## ruff, mypy and the architecture contracts
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(DEV) ## Benchmarks with ratios against floors measured in the same run
	$(BIN)/python -m bench

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) .rat
