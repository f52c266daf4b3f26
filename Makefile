# osft: fine-tune OpenSearch retrieval models on your own documents.
# `make demo` sets up .venv and runs the demo spec end to end; `make test` runs the test suite.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.osft-installed
PACKAGES := -e shared -e 'images/extractor[parquet]' -e images/querygen -e images/trainer -e images/registrar
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test lint format scifact clean

$(STAMP): shared/pyproject.toml images/*/pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	# torch first, from the CPU wheel pip finds through find-links; the ranges below then add nothing.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet $(PACKAGES) -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

DEMO_CORPUS := data/demo/python_docs.jsonl

# Built once: rewriting it would change its timestamp and make the extract stage run again.
$(DEMO_CORPUS): scripts/make_demo_corpus.py | $(STAMP)
	$(BIN)/python scripts/make_demo_corpus.py $@

demo: install $(DEMO_CORPUS)
	$(BIN)/osft run examples/demo.json

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

scifact: install
	$(BIN)/osft run examples/scifact.json

# The benchmark (issue 9): a grid on ../shared/data/scifact (or BENCH_DATA=<BEIR folder>), writes docs/benchmarks.md.
BENCH_DATA ?= ../shared/data/scifact
.PHONY: bench
bench: install
	$(BIN)/python scripts/bench.py --data $(BENCH_DATA)

clean:
	rm -rf runs data .pytest_cache .ruff_cache

# --- infrastructure (issue 8) ---
# Terraform in terraform/, the four images in images/*/Dockerfile, docs in docs/aws.md.
# Lint tools install themselves into .tools/ (scripts/infra_tools.sh); terraform comes from PATH.
# Offline (a provider mirror at /opt/tf-plugins), terraform uses terraform/.terraformrc.offline.
TF ?= terraform
TF_DIR := terraform
TF_VARS ?= examples/example.tfvars
INFRA_TOOLS := .tools
TF_OFFLINE_RC := $(if $(wildcard /opt/tf-plugins),$(CURDIR)/terraform/.terraformrc.offline)
TF_RUN = $(if $(TF_OFFLINE_RC),TF_CLI_CONFIG_FILE=$(TF_OFFLINE_RC)) $(TF) -chdir=$(TF_DIR)
IMAGES := extractor querygen trainer registrar
GIT_SHA = $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
IMAGE_TAG ?= $(GIT_SHA)
# The registry and region come from the Terraform outputs unless given: make push-images ECR_REGISTRY=... AWS_REGION=...
ECR_REGISTRY ?= $(shell $(TF_RUN) output -raw ecr_registry 2>/dev/null)
AWS_REGION ?= $(shell $(TF_RUN) output -raw region 2>/dev/null)
ECR_PREFIX ?= $(or $(shell $(TF_RUN) output -raw name_prefix 2>/dev/null),osft)
PUSH_LATEST ?= $(shell [ "$$($(TF_RUN) output -raw image_tag_mutability 2>/dev/null)" = MUTABLE ] && echo 1 || echo 0)

.PHONY: infra-tools infra-check infra-test image-check tf-init tf-plan build-images push-images

# Each image's packages installed alone, as its Dockerfile installs them, then imported and started
# (there is no Docker engine here to build the images themselves), stage by stage. About 4 minutes.
image-check:
	$(PYTHON) scripts/check_image_installs.py

infra-tools:
	bash scripts/infra_tools.sh

tf-init:
	$(TF_RUN) init -backend=false -input=false

infra-check: infra-tools tf-init
	$(TF_RUN) fmt -check -recursive -diff
	$(TF_RUN) validate
	$(INFRA_TOOLS)/checkov/bin/checkov --quiet --compact --skip-download -d terraform --framework terraform
	$(INFRA_TOOLS)/checkov/bin/checkov --quiet --compact --skip-download -d images --framework dockerfile
	$(INFRA_TOOLS)/lint/bin/hadolint images/*/Dockerfile
	$(INFRA_TOOLS)/lint/bin/statelint terraform/statemachine/pipeline.asl.json
	$(INFRA_TOOLS)/lint/bin/python scripts/infra_jsonata_syntax.py terraform/statemachine/pipeline.asl.json

# The infra tests alone: the checks above plus the contract test and the plan/apply against moto.
infra-test: install infra-tools
	$(BIN)/pytest tests/infra -q

# Plan against AWS with your credentials (TF_VARS=path relative to terraform/). MOTO=1 plans against
# a local moto server instead (fake credentials, nothing leaves the machine).
tf-plan: tf-init
ifeq ($(MOTO),1)
	$(BIN)/python scripts/infra_moto.py plan --var-file $(TF_DIR)/$(TF_VARS)
else
	$(TF_RUN) plan -input=false -var-file=$(TF_VARS)
endif

# The trainer also builds its serve-cpu target as <tag>-cpu: the image CPU endpoints (serverless) serve.
build-images:
	@for image in $(IMAGES); do \
	  echo "building osft-$$image:$(IMAGE_TAG)"; \
	  docker build --platform linux/amd64 -f images/$$image/Dockerfile -t osft-$$image:$(IMAGE_TAG) -t osft-$$image:latest . || exit 1; \
	done
	docker build --platform linux/amd64 --target serve-cpu -f images/trainer/Dockerfile -t osft-trainer:$(IMAGE_TAG)-cpu .

push-images: build-images
	@test -n "$(ECR_REGISTRY)" || { echo "error: no ECR registry: run 'terraform apply' in terraform/ first, or pass ECR_REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com AWS_REGION=<region>"; exit 2; }
	aws ecr get-login-password --region $(AWS_REGION) | docker login --username AWS --password-stdin $(ECR_REGISTRY)
	@for image in $(IMAGES); do \
	  remote=$(ECR_REGISTRY)/$(ECR_PREFIX)/$$image; \
	  docker tag osft-$$image:$(IMAGE_TAG) $$remote:$(IMAGE_TAG) && docker push $$remote:$(IMAGE_TAG) || exit 1; \
	  if [ "$(PUSH_LATEST)" = 1 ]; then docker tag osft-$$image:$(IMAGE_TAG) $$remote:latest && docker push $$remote:latest || exit 1; \
	  else echo "$$remote: tags are immutable, 'latest' not moved"; fi; \
	done
	docker tag osft-trainer:$(IMAGE_TAG)-cpu $(ECR_REGISTRY)/$(ECR_PREFIX)/trainer:$(IMAGE_TAG)-cpu
	docker push $(ECR_REGISTRY)/$(ECR_PREFIX)/trainer:$(IMAGE_TAG)-cpu
	@echo "pushed tag $(IMAGE_TAG); run: terraform -chdir=$(TF_DIR) apply -var-file=<your tfvars> -var image_tag=$(IMAGE_TAG)"
# --- end infrastructure ---
