# genstack: a thin dispatcher over infrastructure/scripts/. `make` lists targets.
SHELL := bash
.DEFAULT_GOAL := help
SCRIPTS := infrastructure/scripts

ENV ?= dev
REGION ?= us-east-1
PROFILE ?=
LOCAL_PORT ?= 4566
ENDPOINT ?=
PARAMS ?=
# In the Lambda runtime already (and in the emulator's environment): never vendored.
RUNTIME_PROVIDED := $(foreach p,boto3 botocore s3transfer python-dateutil six urllib3,--no-emit-package $(p))

.PHONY: help install lint build test test-unit test-e2e bench soak cost docs api-key local local-start local-stop local-status deploy delete taskcat lock clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-13s %s\n", $$1, $$2}'
	@echo "  variables: ENV=$(ENV) REGION=$(REGION) PROFILE=$(PROFILE) LOCAL_PORT=$(LOCAL_PORT)"

install: ## install the project environment and the tools (uv, ministack, sam, checkov, taskcat)
	@bash $(SCRIPTS)/install.sh

lint: install ## cfn-lint, sam validate --lint, checkov, taskcat lint, ruff
	@bash $(SCRIPTS)/lint.sh

build: install ## build the functions for AWS (3.13/arm64) and for the local stack
	@bash $(SCRIPTS)/build.sh --target aws
	@bash $(SCRIPTS)/build.sh --target local

test: ## install, lint, build, then unit, integration and end-to-end tests
	@bash $(SCRIPTS)/test.sh

test-unit: install ## unit tests only (no network, no emulator)
	@.venv/bin/python -m pytest tests/unit

test-e2e: build ## end-to-end tests only (deploys into a ministack of their own)
	@.venv/bin/python -m pytest tests/e2e

bench: build ## benchmarks: cold start, memory, package sizes, fan-out, local stack, idle cost, overhead -> docs/performance.md [BEFORE=an earlier build dir]
	@.venv/bin/python bench/run.py $(if $(BEFORE),--before $(BEFORE))

soak: build ## longer fault and load runs: 2,000 jobs under real worker kills, 1,000 API requests on the local stack
	@GENSTACK_KILL_JOBS=2000 .venv/bin/python -m pytest tests/faults/test_kills.py -s
	@GENSTACK_LOAD_REQUESTS=1000 .venv/bin/python -m pytest tests/e2e/test_load.py -s

cost: install ## idle cost per month of each environment, from the templates and infrastructure/prices.json
	@.venv/bin/python $(SCRIPTS)/cost.py

docs: install ## regenerate the README's parameter, output, environment and cost tables, and docs/openapi.json
	@.venv/bin/python $(SCRIPTS)/readme_tables.py
	@.venv/bin/python $(SCRIPTS)/openapi.py

api-key: install ## issue an API key: make api-key STACK=genstack-dev NAME=alice [TIER=free|standard] [BUDGET=usd]
	@test -n "$(STACK)" -a -n "$(NAME)" || { echo "usage: make api-key STACK=<stack name> NAME=<who it is for> [TIER=free|standard] [BUDGET=usd]"; exit 2; }
	@.venv/bin/python $(SCRIPTS)/api_key.py issue --stack-name $(STACK) --name $(NAME) --tier $(or $(TIER),standard) \
		$(if $(BUDGET),--budget-usd $(BUDGET)) --region $(REGION) $(if $(PROFILE),--profile $(PROFILE))

local: ## start ministack, deploy the whole stack into it, print URL, key and a curl example
	@bash $(SCRIPTS)/local.sh up --port $(LOCAL_PORT)

local-stop: ## stop the ministack that `make local` started
	@bash $(SCRIPTS)/local.sh down --port $(LOCAL_PORT)

local-status: ## is the local stack up, and in what state is the stack
	@bash $(SCRIPTS)/local.sh status --port $(LOCAL_PORT)

local-start: ## only start ministack (then: make deploy ENV=dev ENDPOINT=https://127.0.0.1:4566)
	@bash $(SCRIPTS)/local.sh start --port $(LOCAL_PORT)

deploy: ## the deploy pipeline: make deploy ENV=prod REGION="eu-west-1 us-east-1" PROFILE=p [PARAMS="AlarmEmail=a@b.c"] [ENDPOINT=https://127.0.0.1:4566] [DRY_RUN=1]
	@bash $(SCRIPTS)/pipeline.sh deploy --env $(ENV) $(foreach r,$(REGION),--region $(r)) $(if $(PROFILE),--profile $(PROFILE)) \
		$(if $(ENDPOINT),--endpoint $(ENDPOINT)) $(if $(DRY_RUN),--dry-run) $(foreach p,$(PARAMS),--parameter $(p))

delete: ## delete a deployment: make delete ENV=dev REGION= PROFILE= [ENDPOINT=] (empties its buckets; prod data is retained)
	@bash $(SCRIPTS)/pipeline.sh delete --env $(ENV) $(foreach r,$(REGION),--region $(r)) $(if $(PROFILE),--profile $(PROFILE)) \
		$(if $(ENDPOINT),--endpoint $(ENDPOINT))

taskcat: ## taskcat regression in AWS: package in each scenario's region, taskcat test run, smoke test, delete (needs credentials)
	@bash $(SCRIPTS)/pipeline.sh taskcat $(if $(PROFILE),--profile $(PROFILE)) $(if $(TEST),--test $(TEST))

lock: install ## recompile backend/requirements*.txt from their .in files
	@.tools/uv/bin/uv pip compile --quiet --universal --python-version 3.11 --no-header $(RUNTIME_PROVIDED) \
		backend/requirements.in -o backend/requirements.txt
	@.tools/uv/bin/uv pip compile --quiet --universal --python-version 3.11 --no-header backend/requirements-charts.in \
		$(RUNTIME_PROVIDED) -o backend/requirements-charts.txt

clean: ## remove build output and local-stack state (not the installed environments)
	@rm -rf .aws-sam .local outputs .deploy-logs .pytest_cache .ruff_cache
