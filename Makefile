# llmd.stack developer entry points. Two commands do all the set-up:
#   make demo   build the local lab, deploy the stack with deploy.yml, verify it
#   make test   everything CI runs (.ci/run calls exactly this)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(abspath ansible.cfg)

STAMP := $(VENV)/.installed
LAB_DIR ?= $(if $(LLMD_LAB_DIR),$(LLMD_LAB_DIR),$(CURDIR)/.lab)
# Playbooks on the lab run in its environment (KUBECONFIG, lab tools on PATH).
IN_LAB := source $(LAB_DIR)/env &&
COLLECTION_LINK := .collections/ansible_collections/llmd/stack

.PHONY: help setup lab-tools guidellm lab-up lab-down lab-status test test-unit test-integration molecule lint sanity docs gates ee-context demo clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: $(STAMP) $(COLLECTION_LINK) ## create .venv with pinned tools and link this checkout as llmd.stack

$(STAMP): tests/requirements-dev.txt requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r tests/requirements-dev.txt
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

lab-tools: ## build the lab's Go tools into ~/.cache/llmd-lab (only what is missing)
	bash lab/build-tools.sh

guidellm: ## install guidellm (local-mode benchmarks) into ~/.cache/llmd-lab (only when missing)
	PYTHON=$(PYTHON) bash lab/guidellm/install.sh

lab-up: setup lab-tools ## start the local lab (no-op when it already runs)
	bash lab/lab.sh up

lab-down: ## stop every lab process and remove the lab state
	bash lab/lab.sh down

lab-status: ## say what the lab runs
	bash lab/lab.sh status

test-unit: setup ## pure unit tests (no cluster)
	$(BIN)/pytest tests/unit

test-integration: setup lab-tools guidellm ## tests against the local lab (started and stopped as needed)
	$(BIN)/pytest tests/integration

molecule: setup lab-up ## the molecule scenarios on the lab (extensions/molecule; also part of test-integration)
	$(BIN)/pytest tests/integration/molecule

lint: setup ## ansible-lint (production profile), yamllint and shellcheck
	$(BIN)/ansible-lint
	$(BIN)/yamllint -s .
	$(BIN)/shellcheck -S warning lab/*.sh lab/guidellm/*.sh tests/sanity/run.sh tools/*.sh .ci/run

sanity: setup ## ansible-test sanity
	bash tests/sanity/run.sh

docs: setup ## regenerate the role READMEs and docs/release-matrix.md
	$(BIN)/python tools/role_readme.py
	$(BIN)/python tools/release_matrix_doc.py

GATES ?=
gates: setup ## release gates (build, ansible-doc, changelog, EE, galaxy-importer, antsibull-docs); GATES="..." picks some
	bash tools/gates.sh $(GATES)

ee-context: setup ## write the EE build context to context/ (then: podman build -t llmd-stack-ee context/)
	EE_CONTEXT=context bash tools/gates.sh ee

test: setup lint gates sanity test-unit test-integration ## everything CI runs

demo: lab-up ## lab up, deploy.yml, then verify.yml (reports in reports/verify/)
	$(IN_LAB) $(BIN)/ansible-playbook -i inventories/lab playbooks/deploy.yml
	$(IN_LAB) $(BIN)/ansible-playbook -i inventories/lab playbooks/verify.yml

clean: lab-down ## remove local environments (the tool cache stays)
	rm -rf $(VENV) .collections reports tests/output
