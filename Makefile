# Two entry points: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of PyTorch; override (e.g. TORCH_SPEC='torch>=2.3') for a CUDA machine.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install fashion-mnist demo test lint bench bench-supernet clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

# Fashion-MNIST's IDX files come from Debian's dataset-fashion-mnist (tests and
# `--dataset fashion-mnist` use them); where apt-get is missing the tests that need them skip.
FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist
fashion-mnist:
	@test -d $(FASHION_MNIST_DIR) || apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
		|| echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will skip"

demo: $(STAMP)
	$(BIN)/nas-harness compare --out results/runs/demo

test: $(STAMP) fashion-mnist
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check harness methods surrogates tests bench examples

bench: $(STAMP)
	$(BIN)/python bench/bench_tabular.py

# Supernet training speed beside NB201's own TinyNetworkRANDOM (xautodl, installed without
# its dependencies: it needs only torch), then the supernet summary from committed runs.
bench-supernet: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps xautodl==1.0.0
	$(BIN)/python bench/bench_supernet_speed.py
	$(BIN)/python bench/supernet_summary.py

clean:
	rm -rf $(VENV) results/runs results/mlflow.db results/mlartifacts
