# thermoguard: every command installs what it needs first (a virtual environment in .venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test tmux lint bench flash hil clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/thermoguard demo

test: setup tmux
	$(BIN)/pytest -q

# The dashboard's tests drive a real terminal: Debian's tmux, installed when missing.
tmux:
	@command -v tmux >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y tmux; \
	  elif command -v sudo >/dev/null; then sudo apt-get update && sudo apt-get install -y tmux; \
	  else echo "tmux is missing and cannot be installed here (not root, no sudo): install it for the dashboard's tests"; exit 1; fi; }

lint: setup
	$(BIN)/ruff check host hil tests bench firmware boards tools
	$(BIN)/python tools/mpy_compile.py
	$(BIN)/python tools/typecheck.py

bench: setup
	$(BIN)/python bench/run.py
	$(BIN)/python bench/host_bench.py

hil: setup
	$(BIN)/pytest -q hil/tests

flash: setup
	@test -n "$(PORT)" -a -n "$(BOARD)" || { echo "usage: make flash PORT=/dev/ttyACM0 BOARD=rp2_pico [CONFIG=config.json]"; exit 2; }
	$(BIN)/thermoguard flash --port $(PORT) --board $(BOARD) $(if $(CONFIG),--config $(CONFIG))

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
