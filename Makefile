# nas-host — every target installs what it needs on a fresh machine (PyTorch 2.11.0 for libtorch in a
# venv under ~/.cache, the wasm32-wasip2 target). Caches live outside the clone, so reruns are fast.
SHELL := /bin/bash
.DEFAULT_GOAL := build

CACHE_DIR ?= $(HOME)/.cache/nas-host
VENV := $(CACHE_DIR)/torch-venv
TORCH_VERSION := 2.11.0
PYTHON ?= python3
export CARGO_TARGET_DIR ?= $(CACHE_DIR)/target
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(VENV)/bin:$(PATH)

# Every crate under plugins/ is a plugin (plugins/NAME -> plugins/NAME.wasm); tests/plugins/ holds
# plugins the tests need (a hostile one).
PLUGINS := $(patsubst plugins/%/Cargo.toml,%,$(wildcard plugins/*/Cargo.toml))
TEST_PLUGINS := $(patsubst tests/plugins/%/Cargo.toml,%,$(wildcard tests/plugins/*/Cargo.toml))
# The Python package's native module is built by maturin (`make python`), not by cargo test.
NATIVE := --workspace $(addprefix --exclude ,$(PLUGINS) $(TEST_PLUGINS) nas-host-python)
WASM_DIR := $(CARGO_TARGET_DIR)/wasm32-wasip2/release

# Python plugins (issue #27): every plugins-py/NAME.py but the test_*.py files builds into
# plugins/NAME.wasm beside the Rust ones; tests/plugins-py/NAME.py into tests/plugins/NAME.wasm.
# componentize-py (pinned) lives in the project's venv under ~/.cache, outside the clone.
COMPONENTIZE_PY_VERSION := 0.25.1
PYTEST_VERSION := 9.2.0
PY_SDK := plugin-sdk-py/build.py $(wildcard plugin-sdk-py/nas_plugin/*.py) plugin-sdk/wit/nas-plugin.wit
PY_PLUGINS := $(patsubst plugins-py/%.py,plugins/%.wasm,$(filter-out plugins-py/test_%.py,$(wildcard plugins-py/*.py)))
PY_TEST_PLUGINS := $(patsubst tests/plugins-py/%.py,tests/plugins/%.wasm,$(wildcard tests/plugins-py/*.py))
COMPONENTIZE_PY := $(VENV)/.componentize-py-$(COMPONENTIZE_PY_VERSION)

.PHONY: python build test demo bench bench-parallel bench-python bench-assessor setup plugins python-plugins python-plugin lint clean

$(VENV)/.torch-$(TORCH_VERSION):
	@echo "setting up PyTorch $(TORCH_VERSION) (libtorch for tch) in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check torch==$(TORCH_VERSION) numpy
	touch $@

$(CACHE_DIR)/.wasm32-wasip2:
	rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	mkdir -p $(CACHE_DIR) && touch $@

setup: $(VENV)/.torch-$(TORCH_VERSION) $(CACHE_DIR)/.wasm32-wasip2

$(COMPONENTIZE_PY): $(VENV)/.torch-$(TORCH_VERSION)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check componentize-py==$(COMPONENTIZE_PY_VERSION) pytest==$(PYTEST_VERSION)
	touch $@

# A Python plugin is rebuilt when its file, the SDK or the contract changes.
plugins/%.wasm: plugins-py/%.py $(PY_SDK) | $(COMPONENTIZE_PY)
	$(VENV)/bin/python plugin-sdk-py/build.py $< -o $@

tests/plugins/%.wasm: tests/plugins-py/%.py $(PY_SDK) | $(COMPONENTIZE_PY)
	$(VENV)/bin/python plugin-sdk-py/build.py $< -o $@

python-plugins: $(PY_PLUGINS) $(PY_TEST_PLUGINS)

# One Python file into a plugin: `make python-plugin SRC=plugins-py/ucb.py` writes plugins/ucb.wasm
# (OUT=path.wasm to write elsewhere).
python-plugin: $(COMPONENTIZE_PY)
	@test -n "$(SRC)" || { echo "usage: make python-plugin SRC=file.py [OUT=file.wasm]"; exit 2; }
	$(VENV)/bin/python plugin-sdk-py/build.py $(SRC) $(if $(OUT),-o $(OUT))

plugins: $(CACHE_DIR)/.wasm32-wasip2 python-plugins
	cargo build --release --target wasm32-wasip2 $(addprefix -p ,$(PLUGINS) $(TEST_PLUGINS))
	@for p in $(PLUGINS); do cp -f $(WASM_DIR)/$$p.wasm plugins/$$p.wasm; done
	@for p in $(TEST_PLUGINS); do cp -f $(WASM_DIR)/$$p.wasm tests/plugins/$$p.wasm; done
	@echo "plugins: $(addsuffix .wasm,$(addprefix plugins/,$(PLUGINS))) $(PY_PLUGINS)"

# The Python package (python/, issue #26): maturin builds the wheel against the venv's PyTorch, and
# a fresh venv (uv: torch comes from its cache, hard-linked) gets it with the test extras.
MATURIN_VERSION := 1.16.0
UV_VERSION := 0.13.9
PY_VENV := $(CACHE_DIR)/python-venv
WHEEL_DIR := $(CACHE_DIR)/wheels
$(VENV)/.python-build-$(MATURIN_VERSION)-$(UV_VERSION): $(VENV)/.torch-$(TORCH_VERSION)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check maturin==$(MATURIN_VERSION) uv==$(UV_VERSION)
	touch $@

python: setup $(VENV)/.python-build-$(MATURIN_VERSION)-$(UV_VERSION)
	rm -rf $(WHEEL_DIR)
	cd python && $(VENV)/bin/maturin build --release --quiet --interpreter $(VENV)/bin/python -o $(WHEEL_DIR)
	rm -rf $(PY_VENV)
	$(VENV)/bin/uv venv --quiet --python $(VENV)/bin/python $(PY_VENV)
	$(VENV)/bin/uv pip install --quiet --python $(PY_VENV)/bin/python "$$(ls $(WHEEL_DIR)/nas_host-*.whl)[test]"
	@echo "nas_host is installed in $(PY_VENV): source $(PY_VENV)/bin/activate"

build: setup plugins
	cargo build --release -p nas-host
	@mkdir -p target/release
	@if [ "$$(realpath -m $(CARGO_TARGET_DIR))" != "$$(realpath -m target)" ]; then cp -f $(CARGO_TARGET_DIR)/release/nas-host target/release/nas-host; fi
	@echo "built target/release/nas-host"

# Tests run in the release profile so they share the (slow to build) wasmtime and libtorch
# artifacts with `make build`.
# What the export tests load exported models with: safetensors and onnxruntime beside PyTorch.
$(VENV)/.export-consumers: $(VENV)/.torch-$(TORCH_VERSION)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check safetensors onnxruntime
	touch $@

test: export NAS_TEST_PYTHON := $(VENV)/bin/python
test: build $(VENV)/.export-consumers
	cargo fmt --all -- --check
	cargo clippy --release $(NATIVE) --all-targets -- -D warnings
	cargo clippy --release --target wasm32-wasip2 $(addprefix -p ,$(PLUGINS) $(TEST_PLUGINS)) -- -D warnings
	cargo test --release $(NATIVE)
	# The plugins' own unit tests, run natively; the Python ones, the Python SDK's and the bench scripts' with pytest.
	cargo test --release $(addprefix -p ,$(PLUGINS))
	PYTHONPATH=plugin-sdk-py $(VENV)/bin/python -m pytest -q -p no:cacheprovider plugins-py plugin-sdk-py/tests bench
	# The Python package, from its fresh venv, against the CLI just built.
	cargo clippy --release -p nas-host-python -- -D warnings
	$(MAKE) python
	cd /tmp && NAS_HOST=$(CURDIR)/target/release/nas-host $(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider $(CURDIR)/python/tests
	# The benchmark's PyTorch baseline really is the seed's pipeline (ToTensor only).
	$(VENV)/bin/python -c "import torchvision" 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check torchvision==0.26.0
	$(VENV)/bin/python bench/reference.py --self-test

demo: build
	bash scripts/demo.sh

bench: build
	bash scripts/bench.sh

# Parallel search alone: one worker with every core vs one single-thread worker per core.
bench-parallel: build
	bash scripts/bench-parallel.sh

# Python plugins beside Rust ones: size, cold and warm load, act and shape per call (BENCHMARKS.md).
bench-python: build
	cargo test --release -p nas-host --test python_plugins -- --ignored --nocapture --test-threads 1 bench_python_plugins_beside_rust

# Early stopping: the same MNIST-3 search with and without median_stop (about half an hour here).
bench-assessor: build
	bash scripts/bench-assessor.sh

lint:
	cargo fmt --all
	cargo clippy --release $(NATIVE) --all-targets -- -D warnings

clean:
	rm -rf target plugins/*.wasm tests/plugins/*.wasm
