# The commands the README shows. `make run` and `make test` install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LAUNCHER := graph/server/target/.built
LAUNCHER_SOURCES := graph/server/pom.xml $(shell find graph/server/src -type f 2>/dev/null)

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test lint fmt clean bench

install: $(INSTALLED) $(LAUNCHER)

$(INSTALLED): requirements.lock requirements-bootstrap.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-bootstrap.lock
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $@

# Neo4j 5.26 from Maven Central and the small Java launcher that opens it with Bolt on 127.0.0.1.
$(LAUNCHER): $(INSTALLED) $(LAUNCHER_SOURCES)
	$(BIN)/pageforge neo4j build
	touch $@

run: install
	$(BIN)/pageforge neo4j start
	@echo "API key for tenant 'default' (a new one each run; earlier keys stay valid):"
	@$(BIN)/pageforge tenant key default --create
	$(BIN)/pageforge serve

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install lint
	$(BIN)/pytest

fmt: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache graph/server/target
