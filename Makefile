# ncaforge: one-command setup. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
# Benchmarks: first-touch memory is slow on the target machines; these make torch 1.5-3x faster.
BENCH_ENV := MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=536870912

BAND ?= high
RULES ?= 2000
SEED ?= 0
OUT ?= shards
# make shards: TOKENS (training tokens, 1024 per sequence) or SEQUENCES; the paper's 164M
# tokens (160,000 sequences) when neither is given. RAY_ADDRESS joins a running cluster.
# KIND=nca (default) makes NCA shards in BAND; KIND=dyck the k-Dyck baseline (python -m generator.dyck),
# with the same TOKENS, SEQUENCES, SEED and OUT.
KIND ?= nca
SIZE = $(if $(TOKENS),--tokens $(TOKENS),$(if $(SEQUENCES),--sequences $(SEQUENCES)))
# make serve: the catalog. Off loopback it needs NCAFORGE_CATALOG_TOKEN in the environment.
# make train: torchrun trainer/main.py with RECIPE on DATA (a dataset folder or catalog URL), NPROC ranks.
RECIPE ?= tiny-cpu
NPROC ?= 1
# make experiment: RECIPE names an experiment recipe (experiment/recipes: laptop, the default here,
# workstation, paper); CORPUS= points it at another target corpus, SPLIT_AT= cuts one big file
# into documents, VALIDATION= sets its held-out share; EXPERIMENTS is the folder of data, runs
# and reports. Re-run the same command to continue after any interruption.
EXPERIMENTS ?= runs/experiments
EXPERIMENT_RECIPE = $(if $(filter command line environment,$(origin RECIPE)),$(RECIPE),laptop)
HOST ?= 127.0.0.1
PORT ?= 8000
SHARDS ?= shards

.PHONY: setup test bench bands shards serve train experiment clean-venv compose-tool

setup: $(STAMP)

# The pinned requirements first, then this project in editable mode (no dependency resolution,
# no build isolation: the venv's own setuptools builds it, nothing is fetched for the build).
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# make test: TEST_WORKERS parallel pytest-xdist workers, each taking whole test files in the order
# tests/conftest.py sets; 1 runs them in one process.
TEST_WORKERS ?= 3
test: $(STAMP) compose-tool
	$(PY) -m pytest -q $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) tests

# Debian's docker-compose validates and renders docker-compose.yml without a Docker engine; the
# compose tests use it. Installed with apt when missing and root, else those tests skip, saying so.
compose-tool:
	@command -v docker-compose >/dev/null || [ "$$(id -u)" != 0 ] || (echo "make: installing Debian's docker-compose (apt-get) for the compose tests" \
		&& (apt-get install -y -qq docker-compose >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null 2>&1))) \
		|| echo "make: apt-get could not install docker-compose: the compose tests will skip"

bench: $(STAMP)
	$(BENCH_ENV) $(PY) -m bench.generator
	$(BENCH_ENV) $(PY) -m bench.pipeline
	$(PY) -m bench.service
	$(BENCH_ENV) $(PY) -m bench.trainer
	$(PY) -m bench.tokenize

shards: $(STAMP)
	$(if $(filter-out 1,$(words $(KIND)))$(filter-out nca dyck,$(KIND)),$(error KIND=$(KIND) is unknown: use KIND=nca (NCA shards, the default) or KIND=dyck (the Dyck baseline)))
ifeq ($(KIND),dyck)
	$(PY) -m generator.dyck --seed '$(SEED)' --out '$(OUT)' $(SIZE)
else
	$(PY) -m generator.pipeline --band '$(BAND)' --seed '$(SEED)' --out '$(OUT)' $(SIZE) \
		$(if $(RAY_ADDRESS),--ray-address '$(RAY_ADDRESS)')
endif

serve: $(STAMP)
	$(PY) -m service --host '$(HOST)' --port '$(PORT)' --shards '$(SHARDS)'

train: $(STAMP)
	$(if $(DATA),,$(error DATA is not set: give a dataset folder (shards/<id>) or a catalog URL http://HOST:PORT/v1/datasets/<id>))
	$(VENV)/bin/torchrun --standalone --nproc-per-node $(NPROC) trainer/main.py --recipe '$(RECIPE)' --data '$(DATA)' $(ARGS)

experiment: $(STAMP)
	$(PY) -m experiment '$(EXPERIMENT_RECIPE)' --out '$(EXPERIMENTS)' $(if $(CORPUS),--corpus '$(CORPUS)') \
		$(if $(SPLIT_AT),--split-at '$(SPLIT_AT)') $(if $(VALIDATION),--validation-fraction '$(VALIDATION)')

bands: $(STAMP)
	$(PY) -m generator bands --band $(BAND) --rules $(RULES) --seed $(SEED)

clean-venv:
	rm -rf $(VENV)
