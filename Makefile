# Two commands do everything on a fresh clone: `make demo` and `make test`.
# Both install what is missing: system packages (PostgreSQL, docker-compose, Java, Maven, chromium),
# the virtual environment (.venv/, Python 3.12 as on MWAA) and the Spark jars.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
STATE := $(ROOT)/.state
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
# Python 3.12 as MWAA's Airflow 3.3.1 image; pyenv's if present.
PYTHON312 := $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12))),$(shell command -v python3.12))
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
export PYTHONPATH := $(ROOT)
export PATH := $(VENV)/bin:$(PATH)

VENV_STAMP := $(VENV)/.installed
JARS_STAMP := $(STATE)/jars/.fetched
CDS_STAMP := $(STATE)/jars/.class-archive
# parliament (the IAM policy linter the tests run) still imports pkg_resources, which the
# setuptools MWAA's constraints pin no longer has: it gets a virtual environment of its own.
POLICY_LINT := $(STATE)/tools/parliament
POLICY_LINT_STAMP := $(POLICY_LINT)/.installed
SYSTEM_STAMP := $(STATE)/.system
NATIVE_SRC := spark_jobs/mrf/csrc/mrf_native.c
NATIVE_LIB := spark_jobs/mrf/csrc/libmrf_native.so

.PHONY: help install system venv native jars class-archive policy-lint demo test test-all test-fast lint ui stack-start stack-stop stack-env bench deploy clean distclean

help:
	@echo "make demo     start the local stack, run every DAG end to end, print a summary, stop"
	@echo "make test     run the test suite (installs what is missing; under 30 min on 2 cores)"
	@echo "make test-all the test suite with every DAG on every Spark platform"
	@echo "make lint     ruff"
	@echo "make ui       Airflow's UI on the local stack (http://127.0.0.1:8080; PORT=N), until Ctrl-C"
	@echo "make bench    run the benchmarks (bench/*.py --quick), figures in bench/results/"
	@echo "make deploy   package and upload to an MWAA environment (see README)"
	@echo "make stack-start / stack-stop / stack-env   the local stack by hand"
	@echo "make clean    remove .state/ (servers' data, Airflow home, jars)"

install: system venv native jars class-archive policy-lint

$(SYSTEM_STAMP): Makefile
	@mkdir -p $(STATE)
	@missing=""; \
	  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	  command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	  command -v mvn >/dev/null || missing="$$missing maven"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing system packages:$$missing"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	  fi
	@touch $@
system: $(SYSTEM_STAMP)

$(VENV_STAMP): requirements.txt requirements-dev.txt dags/constraints.txt
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (pyenv or python3.12 on PATH)"; exit 1; }
	@mkdir -p $(STATE)
	$(PYTHON312) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv==0.12.3
	@# MWAA's requirements.txt names its constraints by their path on MWAA; use the same file here.
	grep -v -- '--constraint' requirements.txt > $(STATE)/requirements-local.txt
	$(VENV)/bin/uv pip install -q --python $(PY) apache-airflow==3.3.1 \
	  -r $(STATE)/requirements-local.txt -r requirements-dev.txt -c dags/constraints.txt
	@touch $@
venv: $(VENV_STAMP)

# The JSON-to-Parquet converter's C fast path (spark_jobs/mrf/native.py); the job runs
# without it, slower, where no compiler is at hand.
$(NATIVE_LIB): $(NATIVE_SRC) | $(VENV_STAMP)
	$(PY) -m spark_jobs.mrf.native build
native: $(NATIVE_LIB)

$(JARS_STAMP): local/jars/pom.xml | $(SYSTEM_STAMP)
	mvn -q -f local/jars/pom.xml dependency:copy-dependencies -DoutputDirectory=$(STATE)/jars
	@touch $@
jars: $(JARS_STAMP)

# A JVM class archive of Spark and Iceberg (local/services/spark_cds.py): local Spark starts faster.
# Only an optimisation, so a failure to dump it is reported and the install goes on.
$(CDS_STAMP): $(JARS_STAMP) $(VENV_STAMP)
	$(PY) -m local.services.spark_cds || echo "class archive not dumped: local Spark starts without it"
	@touch $@
class-archive: $(CDS_STAMP)

$(POLICY_LINT_STAMP): requirements-policy-lint.txt | $(VENV_STAMP)
	$(VENV)/bin/uv venv -q --python $(PYTHON312) $(POLICY_LINT)
	$(VENV)/bin/uv pip install -q --python $(POLICY_LINT)/bin/python -r requirements-policy-lint.txt
	@touch $@
policy-lint: $(POLICY_LINT_STAMP)

demo: install
	$(PY) -m local.launchers.demo $(if $(PLATFORM),--platform $(PLATFORM))

# make test runs each DAG end to end on one Spark platform (each platform at least twice);
# test-all adds the tests marked full: every DAG on every platform
# (tests/dag/test_dags_end_to_end.py) and the real scheduler (tests/scheduler/).
test: install
	$(PY) -m pytest -m "not full"

test-all: install
	$(PY) -m pytest

ui: install
	$(PY) -m local.launchers.ui $(if $(PORT),--port $(PORT))

test-fast: venv native
	$(PY) -m pytest tests/unit

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	@# Benchmarks are the scripts that take --quick (gen_mrf.py and mrf_reference.py are helpers).
	@for b in $$(grep -l -- '"--quick"' bench/*.py); do echo "== $$b"; $(PY) $$b --quick || exit 1; done

stack-start: install
	$(PY) -m local.services.stack start
stack-stop: venv
	$(PY) -m local.services.stack stop
stack-env: venv
	@$(PY) -m local.services.stack env

# make deploy ENV=my-mwaa-env [SCRIPTS_URI=s3://bucket/spark_jobs]
deploy: venv
	$(PY) -m deploy.mwaa --environment "$(ENV)" $(if $(SCRIPTS_URI),--scripts-uri "$(SCRIPTS_URI)")

clean:
	-$(PY) -m local.services.stack clean 2>/dev/null
	rm -rf $(STATE) dist

distclean: clean
	rm -rf $(VENV)
