# One entry point. Each target sets up .venv on first use (infra/install.sh).
VENV ?= .venv
BIN := $(VENV)/bin
export KTREC_HOME ?= $(CURDIR)/.ktrec

.PHONY: install demo test bench clean

install:
	@bash infra/install.sh

demo: install  ## run the nightly pipeline end to end on ml-100k with embedded defaults
	$(BIN)/ktrec demo

test: install  ## the whole test suite (real Spark, GE, Feast, MLflow, Airflow, Postgres, Redis)
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc = 5 ]; then echo 'no tests collected'; rc=0; fi; exit $$rc

bench: install  ## benchmarks; reports under benchmarks/reports/
	$(BIN)/python -m benchmarks.ingest
	$(BIN)/python -m benchmarks.kt_gain
	$(BIN)/python -m benchmarks.feast_store

clean:
	rm -rf .ktrec
