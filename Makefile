# Self-sufficient entry points: `make demo` and `make test` create .venv and install on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test install clean-venv

$(STAMP): requirements.txt requirements-dev.txt setup.py
	@# open3d's wheel links libusb-1.0; open3d serves only the mesh sampler (--mesh_path of
	@# tools/prepare_InstantNGP_with_mesh.py and its tests). Install the Debian package when we can.
	@if ! ldconfig -p 2>/dev/null | grep -q libusb-1.0; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q libusb-1.0-0 || (apt-get update -q && apt-get install -y -q libusb-1.0-0)); \
	  else echo "warning: libusb-1.0 is missing; open3d (mesh sampling, --mesh_path) will not import (apt-get install libusb-1.0-0)"; fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Generate the procedural demo scene once, then train it (outputs in output/demo, logs in logs/demo).
demo: $(STAMP)
	@test -f data/demo/train.json || $(PY) tools/make_demo_scene.py --output_dir data/demo
	$(PY) gaussian_point_train.py --train_config config/demo.yaml

test: $(STAMP)
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
