# plantbridge: `make test` and `make demo` each set up .venv from scratch on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install test lint demo dev bench clean

$(BIN)/.installed: pyproject.toml devtools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./devtools
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy plantbridge devtools/plantbridge_devtools

test: lint
	$(BIN)/pytest -q --durations=25

demo: install
	$(BIN)/plantbridge demo --orders 6

dev: install
	$(BIN)/plantbridge dev

clean:
	rm -rf $(VENV) .plantbridge .pytest_cache .mypy_cache .ruff_cache
