# Everything a developer or CI runs goes through these targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
HOST   ?= 127.0.0.1
BASE_URL ?= http://$(HOST):$(PORT)
export BASE_URL

.PHONY: help install install-test run serve test test-fast lint typecheck translations \
        extract-messages migrate check-migrations bench-launch bench-content preview clean

help:
	@echo "make run          set up and serve the tool on $(BASE_URL) (SQLite under instance/)"
	@echo "make test         set up and run the whole test suite"
	@echo "make lint         ruff, mypy and import-linter"
	@echo "make bench-launch launch throughput benchmark against a minimal Flask tool"
	@echo "make bench-content content check, publish and render benchmark (1,000 items)"
	@echo "make bench-module  a learner's module page, warm: server time p99 < 10 ms"
	@echo "make bench-grades  10,000 scores through two lti-tool workers in < 60 s (PostgreSQL)"
	@echo "make preview      preview the course content in a browser (no LMS needed)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,dev]"
	touch $@

install: $(VENV)/.installed translations

install-test: $(VENV)/.installed-test translations

translations: $(BIN)/python
	@$(BIN)/python scripts/compile_translations.py

extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output -o lti_tool/translations/messages.pot .
	$(BIN)/pybabel update -i lti_tool/translations/messages.pot -d lti_tool/translations --no-fuzzy-matching

migrate: install
	$(BIN)/lti-tool db upgrade

# One command: venv, install with exact pins, migrate, generate keys, serve with gunicorn.
run: install
	$(BIN)/lti-tool setup
	$(BIN)/gunicorn -c config/gunicorn.conf.py --bind $(HOST):$(PORT) --workers 2 "lti_tool:create_app()"

serve: run

test: install-test
	bash scripts/install-browser-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install-test
	$(BIN)/python -m pytest -m "not browser and not slow" $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check-migrations: install-test
	$(BIN)/python -m pytest tests/integration/test_migrations.py

bench-launch: install-test
	$(BIN)/python bench/launch.py

bench-content: install-test
	$(BIN)/python bench/content.py

.PHONY: bench-module bench-grades
bench-module: install-test
	$(BIN)/python bench/module_page.py

bench-grades: install-test
	$(BIN)/python bench/grades.py

# Serve every module, experiment and badge of the working tree, reloading on change.
PREVIEW_PORT ?= 5174
preview: install
	$(BIN)/lti-tool content preview --port $(PREVIEW_PORT)

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
