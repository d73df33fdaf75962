# One entry point. Each target sets up .venv on first use (infra/install.sh).
VENV ?= .venv
BIN := $(VENV)/bin
export KTREC_HOME ?= $(CURDIR)/.ktrec
# OpenMP threads spin while idle by default; with Spark and torch sharing 2 cores that costs up to 30x.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo lint test bench bench-peer capacity clean

install:
	@bash infra/install.sh

demo: install  ## run the nightly pipeline end to end on ml-100k with embedded defaults
	$(BIN)/ktrec demo

lint: install  ## ruff (pyproject.toml's rules); CI runs it before the tests
	$(BIN)/ruff check .

test: install  ## the whole test suite (real Spark, GE, Feast, MLflow, Airflow, Postgres, Redis)
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc = 5 ]; then echo 'no tests collected'; rc=0; fi; exit $$rc

bench: install  ## benchmarks; reports under benchmarks/reports/
	$(BIN)/python -m benchmarks.ingest
	$(BIN)/python -m benchmarks.kt_gain
	$(BIN)/python -m benchmarks.feast_store
	$(BIN)/python -m benchmarks.capacity

capacity: install  ## docs/capacity.md and benchmarks/reports/capacity.json from the reports (no measuring)
	$(BIN)/python -m benchmarks.capacity

bench-peer: install  ## RecBole 1.2.1 in its own venv (pins: shared/peers/recbole.md), then kt_gain beside it
	test -x .recbole-venv/bin/python || (python3 -m venv .recbole-venv && .recbole-venv/bin/pip install torch==2.13.0 \
	  && echo "torch==2.13.0" > .recbole-constraints.txt && .recbole-venv/bin/pip install recbole==1.2.1 numpy==1.23.5 \
	  scipy==1.10.1 pandas==1.5.3 scikit-learn==1.2.2 "setuptools>=77.0.3,<81" -c .recbole-constraints.txt)
	$(BIN)/python -m benchmarks.kt_gain --models bpr,lightgcn --peer recbole

clean:
	rm -rf .ktrec
