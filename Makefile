# One command to set up and run the product on simulated data (`make demo`), one to test (`make test`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/.data/dagster_home
# glibc keeps freed pandas/Arrow buffers in the heap once its mmap threshold has grown, so one
# process running every step in turn kept them all: a second `make demo` on the same data peaked at
# 6.1 GiB. Fixed thresholds hand large buffers back on free: the same run peaked at 1.7 GiB.
export MALLOC_MMAP_THRESHOLD_ ?= 1048576
export MALLOC_TRIM_THRESHOLD_ ?= 1048576
# The UIs and the service listen on loopback only; `make serve HOST=0.0.0.0` opens one to the
# network (the service then needs ADFLOW_SERVING_TOKEN; the Dagster and MLflow UIs have no login).
# `:=`, not `?=`: a HOST in the environment (some shells and CI set one) does not open them.
HOST := 127.0.0.1

.PHONY: setup demo test ui mlflow-ui serve clean

setup: $(VENV)/.installed

# torch first: 2.13.0 is this machine's local CPU build (a loose requirement would pull a CUDA build).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	cd dbt_project && ../$(VENV)/bin/dbt parse --quiet --profiles-dir .
	touch $@

demo: setup
	$(PY) -m orchestration.demo

test: setup
	$(PY) -m pytest

ui: setup
	$(PY) -c "from ml.settings import Settings; from orchestration.instance import prepare_dagster_home; prepare_dagster_home(Settings.from_env())"
	$(VENV)/bin/dagster dev -w workspace.yaml -h $(HOST) -p 3000

mlflow-ui: setup
	$(VENV)/bin/mlflow ui -h $(HOST) -p 5000 --backend-store-uri \
		"$$($(PY) -c 'from ml.settings import Settings; print(Settings.from_env().mlflow_tracking_uri)')"

serve: setup
	$(PY) -m serving --host $(HOST) --port 8000

clean:
	rm -rf .data dbt_project/target
