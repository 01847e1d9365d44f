# Self-sufficient entry points: `make demo` and `make test` create .venv and install on first use.
# `make demo` installs the package only (pyproject.toml's dependencies); `make test` adds the
# `mesh` and `test` extras (trimesh, pytest, gsplat, playwright, ...).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
TORCH_STAMP := $(VENV)/.torch
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test install clean-venv

# torch first, as the README says: a bare `torch` dependency would pull the CUDA build (GBs).
$(TORCH_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	touch $(TORCH_STAMP)

$(DEMO_STAMP): pyproject.toml $(TORCH_STAMP)
	$(PY) -m pip install -q -e .
	touch $(DEMO_STAMP)

$(TEST_STAMP): pyproject.toml $(TORCH_STAMP)
	$(PY) -m pip install -q -e ".[mesh,test]"
	touch $(TEST_STAMP) $(DEMO_STAMP)

install: $(TEST_STAMP)

# Generate the procedural demo scene once, then train it (outputs in output/demo, logs in logs/demo).
demo: $(DEMO_STAMP)
	@test -f data/demo/train.json || $(PY) tools/make_demo_scene.py --output_dir data/demo
	$(PY) gaussian_point_train.py --train_config config/demo.yaml

test: $(TEST_STAMP)
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
