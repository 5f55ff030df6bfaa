# gpu-autostop — the single entry point. `make` (or `make help`) lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
DEV_REQUIREMENTS := requirements-dev.txt functions/requirements.txt

.PHONY: help venv build test pytest lint fmt typecheck bench bench-agent clean start status \
	cost cost-table simulate prices traces reset-cap cap-status

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV_STAMP): $(DEV_REQUIREMENTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV_STAMP) ## Create .venv and install the pinned dependencies

build: $(VENV_STAMP) ## Build build/functions.zip (deterministic Lambda package)
	$(PY) scripts/build_zip.py

test: lint pytest ## Run everything CI runs (lint, type check, tests)

PYTEST_ARGS ?=
pytest: $(VENV_STAMP) ## Run the Python tests
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(VENV_STAMP) ## ruff lint + format check, mypy, actionlint and zizmor on the workflows
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --quiet .github/workflows/

typecheck: lint

fmt: $(VENV_STAMP) ## Format and auto-fix with ruff
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: build ## Print the zip size and each handler's cold import time vs the floor
	$(PY) scripts/bench_imports.py

bench-agent: $(VENV_STAMP) ## Run the on-instance agent 120 s against a stand-in ComfyUI + moto: RSS, CPU, readiness delay
	$(PY) scripts/bench_agent.py --seconds $${BENCH_SECONDS:-120}

# The command-line client against the deployed stack (AWS credentials and region from the usual
# AWS_* variables or profile). GPU_AUTOSTOP_NAME: the Terraform `name` (default gpu-autostop);
# WAIT: none|running|ready for `start`; ARGS: more options, e.g. ARGS=--json.
WAIT ?= none
CLIENT := PYTHONPATH=functions $(PY) -m autostop.client $(if $(GPU_AUTOSTOP_NAME),--name $(GPU_AUTOSTOP_NAME))

start: $(VENV_STAMP) ## Start the GPU instance (WAIT=ready to wait for ComfyUI)
	$(CLIENT) start --wait $(WAIT) $(ARGS)

status: $(VENV_STAMP) ## Show the instance state, readiness and ComfyUI URL
	$(CLIENT) status $(ARGS)

# --- cost: estimate, compare policies, refresh prices, the hard cap ------------------------------
INSTANCE_TYPE ?= g4dn.xlarge
REGION ?= us-east-1
HOURS_PER_DAY ?= 4
DAYS ?=
MARKET ?= on-demand
VOLUME_GB ?= 100
COST_ARGS ?=
TRACES ?= examples/traces/office-hours.csv examples/traces/nightly-batch.csv examples/traces/hobby.csv
SIMULATE_ARGS ?=
PRICES_FILE ?= prices.json
CAP_PARAMETER ?= /gpu-autostop/cap
EXTRA_USD ?= 0
FUNCTIONS_PY := PYTHONPATH=functions $(PY)
PRICES_ARG = $(if $(wildcard $(PRICES_FILE)),--prices $(PRICES_FILE))

cost: $(VENV_STAMP) ## Monthly bill (INSTANCE_TYPE REGION HOURS_PER_DAY DAYS MARKET VOLUME_GB COST_ARGS=--json)
	$(FUNCTIONS_PY) -m autostop.cost --instance-type $(INSTANCE_TYPE) --region $(REGION) \
		--hours-per-day $(HOURS_PER_DAY) $(if $(DAYS),--days $(DAYS)) --market $(MARKET) \
		--volume-gb $(VOLUME_GB) $(PRICES_ARG) $(COST_ARGS)

cost-table: $(VENV_STAMP) ## The README's 24/7 vs 8/4/2 hours-a-day table (REGION MARKET INSTANCE_TYPE)
	$(FUNCTIONS_PY) -m autostop.cost --table --region $(REGION) --market $(MARKET) \
		--instance-type $(INSTANCE_TYPE) --volume-gb $(VOLUME_GB) $(PRICES_ARG) $(COST_ARGS)

simulate: $(VENV_STAMP) ## Compare stop policies on job traces (TRACES, INSTANCE_TYPE REGION, SIMULATE_ARGS)
	$(FUNCTIONS_PY) -m autostop.simulate $(foreach t,$(TRACES),--trace $(t)) --instance-type $(INSTANCE_TYPE) \
		--region $(REGION) --market $(MARKET) $(PRICES_ARG) $(SIMULATE_ARGS)

traces: $(VENV_STAMP) ## Regenerate the sample traces in examples/traces/ (deterministic)
	$(PY) scripts/make_traces.py

prices: $(VENV_STAMP) ## Refresh prices.json (PRICES_FILE) from the AWS Price List API (optional; needs AWS credentials)
	$(FUNCTIONS_PY) -m autostop.pricing_refresh --out $(PRICES_FILE)

reset-cap: $(VENV_STAMP) ## Reset the tripped hard spend cap (CAP_PARAMETER, EXTRA_USD; needs AWS credentials)
	$(FUNCTIONS_PY) -m autostop.cap reset --parameter $(CAP_PARAMETER) --extra-usd $(EXTRA_USD)

cap-status: $(VENV_STAMP) ## Show whether the hard spend cap is tripped (CAP_PARAMETER)
	$(FUNCTIONS_PY) -m autostop.cap status --parameter $(CAP_PARAMETER)

clean: ## Remove build outputs, caches and virtual environments
	rm -rf build $(VENV) .venv-checkov .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
