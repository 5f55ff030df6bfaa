# gpu-autostop — the single entry point. `make` (or `make help`) lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
DEV_REQUIREMENTS := requirements-dev.txt functions/requirements.txt constraints.txt
# The project's own packages, installed editable into .venv (no PYTHONPATH anywhere): the Lambda
# runtime, the operator command `gpu-autostop`, the offline tools `gpu-autostop-tools`, the agent,
# and the contract the agent and the runtime share (contract/autostop_contract.py).
PACKAGES := contract functions cli tools agent
PACKAGE_FILES := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
# The deploy toolchain (preflight, plan, deploy, destroy, replace-instance): only boto3 and what
# building the two archives needs, in its own .venv-deploy, so a laptop needs none of the dev tools.
DEPLOY_VENV := .venv-deploy
DEPLOY_PY := $(DEPLOY_VENV)/bin/python
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
DEPLOY_GOALS := preflight plan deploy destroy replace-instance
ifneq ($(filter $(DEPLOY_GOALS),$(MAKECMDGOALS)),)
BUILD_STAMP := $(DEPLOY_STAMP)
BUILD_PY := $(DEPLOY_PY)
else
BUILD_STAMP := $(VENV_STAMP)
BUILD_PY := $(PY)
endif

.PHONY: help venv build test pytest lint fmt typecheck bench bench-agent clean start status demo \
	cost cost-table simulate prices traces reset-cap cap-status

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV_STAMP): $(DEV_REQUIREMENTS) $(PACKAGE_FILES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@# --no-deps: every dependency is pinned above; --no-build-isolation: the pinned setuptools builds.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		$(foreach p,$(PACKAGES),-e ./$(p))
	touch $@

venv: $(VENV_STAMP) ## Create .venv and install the pinned dependencies

$(DEPLOY_STAMP): requirements-deploy.txt constraints.txt
	test -x $(DEPLOY_PY) || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_PY) -m pip install --quiet --disable-pip-version-check -r requirements-deploy.txt -c constraints.txt
	touch $@

deploy-venv: $(DEPLOY_STAMP) ## Create .venv-deploy: only what preflight, build and deploy need (requirements-deploy.txt)

build: $(BUILD_STAMP) ## Build build/functions.zip (deterministic Lambda package)
	$(BUILD_PY) scripts/build_zip.py

test: lint pytest terraform-test ## Everything CI runs: lint, types, unit + integration tests (demo), Terraform tests, checkov

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
	$(PY) -m scripts.bench_agent --seconds $${BENCH_SECONDS:-120}

# The command-line client against the deployed stack (AWS credentials and region from the usual
# AWS_* variables or profile). GPU_AUTOSTOP_NAME: the Terraform `name` (default gpu-autostop);
# WAIT: none|running|ready for `start`; ARGS: more options, e.g. ARGS=--json.
WAIT ?= none
OPERATOR := $(VENV)/bin/gpu-autostop
CLIENT := $(OPERATOR) $(if $(GPU_AUTOSTOP_NAME),--name $(GPU_AUTOSTOP_NAME))

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
TOOLS := $(VENV)/bin/gpu-autostop-tools
PRICES_ARG = $(if $(wildcard $(PRICES_FILE)),--prices $(PRICES_FILE))

cost: $(VENV_STAMP) ## Monthly bill (INSTANCE_TYPE REGION HOURS_PER_DAY DAYS MARKET VOLUME_GB COST_ARGS=--json)
	$(TOOLS) cost --instance-type $(INSTANCE_TYPE) --region $(REGION) \
		--hours-per-day $(HOURS_PER_DAY) $(if $(DAYS),--days $(DAYS)) --market $(MARKET) \
		--volume-gb $(VOLUME_GB) $(PRICES_ARG) $(COST_ARGS)

cost-table: $(VENV_STAMP) ## The README's 24/7 vs 8/4/2 hours-a-day table (REGION MARKET INSTANCE_TYPE)
	$(TOOLS) cost --table --region $(REGION) --market $(MARKET) \
		--instance-type $(INSTANCE_TYPE) --volume-gb $(VOLUME_GB) $(PRICES_ARG) $(COST_ARGS)

simulate: $(VENV_STAMP) ## Compare stop policies on job traces (TRACES, INSTANCE_TYPE REGION, SIMULATE_ARGS)
	$(TOOLS) simulate $(foreach t,$(TRACES),--trace $(t)) --instance-type $(INSTANCE_TYPE) \
		--region $(REGION) --market $(MARKET) $(PRICES_ARG) $(SIMULATE_ARGS)

traces: $(VENV_STAMP) ## Regenerate the sample traces in examples/traces/ (deterministic)
	$(TOOLS) traces

prices: $(VENV_STAMP) ## Refresh prices.json (PRICES_FILE) from the AWS Price List API (optional; needs AWS credentials)
	$(TOOLS) prices --out $(PRICES_FILE)

reset-cap: $(VENV_STAMP) ## Reset the tripped hard spend cap (CAP_PARAMETER, EXTRA_USD; needs AWS credentials)
	$(OPERATOR) cap reset --parameter $(CAP_PARAMETER) --extra-usd $(EXTRA_USD)

cap-status: $(VENV_STAMP) ## Show whether the hard spend cap is tripped (CAP_PARAMETER)
	$(OPERATOR) cap status --parameter $(CAP_PARAMETER)

clean: ## Remove build outputs, caches and virtual environments
	rm -rf build $(VENV) $(DEPLOY_VENV) .venv-checkov .tf-cli terraform/.terraform .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# ==================================================================================================
# Terraform (terraform/): init, checks, tests, and the real-account targets.
# `terraform init` works offline where a provider mirror exists (TF_MIRROR, the build machines):
# then TF_CLI_CONFIG_FILE points at a generated .tf-cli/terraformrc that installs hashicorp/aws
# from the mirror. Elsewhere terraform uses its normal configuration and the registry.
# ==================================================================================================

TF_DIR := terraform
TF_MIRROR ?= /opt/tf-plugins
TF_CLI_RC := $(CURDIR)/.tf-cli/terraformrc
ifneq ($(wildcard $(TF_MIRROR)/registry.terraform.io/hashicorp/aws),)
export TF_CLI_CONFIG_FILE := $(TF_CLI_RC)
TF_RC := $(TF_CLI_RC)
endif
TF := terraform -chdir=$(TF_DIR)
TF_INIT_OFFLINE = $(TF) init -input=false -backend=false >/dev/null
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: tf-init tf-fmt-check tf-validate tf-test tf-apply-test checkov terraform-test \
	agent-archive deploy-venv preflight plan deploy destroy replace-instance stop FORCE

FORCE:

$(TF_CLI_RC): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' \
		'# Generated by make: install hashicorp/aws from the local mirror, nothing from the registry.' \
		'provider_installation {' \
		'  filesystem_mirror {' \
		'    path    = "$(TF_MIRROR)"' \
		'    include = ["registry.terraform.io/hashicorp/aws"]' \
		'  }' \
		'  direct {' \
		'    exclude = ["registry.terraform.io/hashicorp/aws"]' \
		'  }' \
		'}' > $@

tf-init: $(TF_RC) ## terraform init (providers from the local mirror when present; backend as configured)
	$(TF) init -input=false

tf-fmt-check: ## terraform fmt -check -recursive
	terraform fmt -check -recursive -diff $(TF_DIR)

tf-validate: $(TF_RC) ## terraform validate (root and modules)
	$(TF_INIT_OFFLINE)
	$(TF) validate

tf-test: $(TF_RC) ## Terraform plan tests with the mock provider (terraform/tests/*.tftest.hcl; TF_TEST_ARGS=-filter=...)
	$(TF_INIT_OFFLINE)
	$(TF) test $(TF_TEST_ARGS)

tf-apply-test: $(TF_RC) build $(VENV_STAMP) ## Apply then destroy the stack against a moto server on 127.0.0.1
	$(TF) init -input=false -backend=false -test-directory=tests/apply >/dev/null
	$(PY) scripts/with_moto_server.py -- $(TF) test -test-directory=tests/apply

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

checkov: $(CHECKOV_STAMP) ## Static security checks of terraform/ (own venv; config in .checkov.yaml)
	@mkdir -p build
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml | tee build/checkov.txt
	@# checkov exits 0 when it cannot parse a file, and that file is then not checked at all.
	@! grep -q 'Parsing errors: [1-9]' build/checkov.txt || { echo "checkov could not parse a file (above)" >&2; exit 1; }

terraform-test: tf-fmt-check tf-validate tf-test tf-apply-test checkov ## Every Terraform check (fmt, validate, plan tests, moto apply test, checkov)

agent-archive: $(BUILD_STAMP) ## Build build/agent.tar.gz (the on-instance agent, uploaded to S3 by Terraform)
	$(BUILD_PY) scripts/build_agent_archive.py

# PREFLIGHT=0 skips the preflight at the start of `make deploy`; PREFLIGHT_ARGS: e.g. --market spot.
PREFLIGHT ?= 1
PREFLIGHT_ARGS ?=
SPOT_REQUESTS := $(DEPLOY_PY) -m scripts.spot_requests
SPOT_RECORD := build/spot-request.json
SPOT_RECORD_ARGS := $(if $(GPU_AUTOSTOP_NAME),--name $(GPU_AUTOSTOP_NAME))

preflight: $(TF_RC) $(DEPLOY_STAMP) ## What would stop a deploy (quotas, concurrency, AMI, leftovers...), with the fix; PREFLIGHT_ARGS
	$(TF) init -input=false >/dev/null
	$(DEPLOY_PY) scripts/preflight.py $(PREFLIGHT_ARGS)

plan: $(TF_RC) build agent-archive ## terraform plan with your credentials (terraform/terraform.tfvars; PLAN_ARGS)
	$(TF) init -input=false >/dev/null
	$(TF) plan $(PLAN_ARGS)

deploy: $(TF_RC) $(if $(filter 0,$(PREFLIGHT)),,preflight) build agent-archive ## preflight (PREFLIGHT=0 skips), then terraform apply (asks first; DEPLOY_ARGS)
	$(TF) init -input=false >/dev/null
	$(TF) apply $(DEPLOY_ARGS)

# destroy and replace-instance: the spot request of the instance is read first and cancelled after
# Terraform (hashicorp/terraform-provider-aws#38142); non-zero when that cannot be proven.
destroy: $(TF_RC) $(DEPLOY_STAMP) build agent-archive ## terraform destroy (asks first), then cancel the instance's spot request
	$(TF) init -input=false >/dev/null
	$(SPOT_REQUESTS) record --out $(SPOT_RECORD) $(SPOT_RECORD_ARGS)
	rc=0; $(TF) destroy $(DESTROY_ARGS) || rc=$$?; $(SPOT_REQUESTS) cancel --record $(SPOT_RECORD) || rc=$$?; exit $$rc

replace-instance: $(TF_RC) $(DEPLOY_STAMP) build agent-archive ## New GPU instance (terraform apply -replace), then cancel the old spot request
	$(TF) init -input=false >/dev/null
	$(SPOT_REQUESTS) record --out $(SPOT_RECORD) $(SPOT_RECORD_ARGS)
	rc=0; $(TF) apply -replace=module.instance.aws_instance.gpu $(DEPLOY_ARGS) || rc=$$?; \
		$(SPOT_REQUESTS) cancel --record $(SPOT_RECORD) || rc=$$?; exit $$rc

demo: $(TF_RC) build $(VENV_STAMP) ## The whole system on a local AWS emulator (moto), in under two minutes
	$(TF) init -input=false -backend=false -test-directory=tests/demo >/dev/null
	$(PY) -m demo.run_demo $(DEMO_ARGS)

stop: $(VENV_STAMP) ## Emergency stop: force-stop via the stop function, or EC2 directly if it is gone
	$(OPERATOR) emergency-stop
