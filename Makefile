# Two commands for a new user: `make run` (the whole stack) and `make test` (the whole suite).
# Both set up what is missing: the two virtual environments, the Rasa model, and Chromium.
SHELL := /bin/bash
PYTHON ?= python3
PYTHON310 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python) $(shell command -v python3.10))
VENV := .venv
RASA_VENV := .venv-rasa
RASA := $(RASA_VENV)/bin/rasa
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RASA_TELEMETRY_ENABLED := false

.PHONY: run test setup model validate lint audit chromium npm clean

run: setup
	$(VENV)/bin/indgang run

test: setup chromium npm validate lint
	$(VENV)/bin/pytest

setup: $(VENV)/.installed $(RASA_VENV)/.installed model

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed for the main environment"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

$(RASA_VENV)/.installed: bot/requirements.txt
	@test -n "$(PYTHON310)" || { echo "Rasa 3.6 needs Python 3.10: set PYTHON310=/path/to/python3.10"; exit 1; }
	$(PYTHON310) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install --quiet --upgrade "pip<24.1"
	$(RASA_VENV)/bin/pip install --quiet -r bot/requirements.txt
	touch $@

model: $(VENV)/.installed $(RASA_VENV)/.installed
	$(VENV)/bin/indgang train

validate: $(RASA_VENV)/.installed
	$(RASA) data validate --fail-on-warnings --domain bot/domain --data nlu_data/train bot/data --config bot/config.yml

# bandit: findings of medium or high severity fail the build (each exception is a `# nosec` with
# its reason in the code).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/bandit --quiet --severity-level medium --recursive indgang webhook actions

# Known vulnerabilities in the installed packages. It asks a vulnerability service over the
# network, so it is not part of `make test` (see README, "Deploying it for real").
audit: $(VENV)/.installed
	$(VENV)/bin/pip-audit --strict --skip-editable

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# axe-core (package.json) for the web chat's accessibility test; the chat itself has no build step.
npm: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm; }
	npm ci --no-audit --no-fund

clean:
	rm -rf .run .cache bot/models
