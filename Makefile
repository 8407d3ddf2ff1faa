# oathdesk: two commands do all the set-up on a fresh machine.
#   make run   - create .venv, install, start the web console on the embedded SQLite vault
#                (first run: creates the vault and prints a one-time link for the first admin)
#   make test  - create .venv, install dev tools and system packages, run ruff, mypy and all tests
#   make bench - run the side-by-side benchmarks and write docs/benchmarks.md

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo screenshots test lint typecheck unit bench lock system-deps clean

$(STAMP): pyproject.toml requirements.lock scripts/check-python.sh scripts/system-deps.sh
	@scripts/check-python.sh $(PYTHON)
	@scripts/system-deps.sh build
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	@$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e '.[nfc]'
	@$(BIN)/python -m compileall -q src  # byte-code up front, even where PYTHONDONTWRITEBYTECODE is set
	@touch $@

system-deps:
	@scripts/system-deps.sh test

run: $(STAMP)
	@$(BIN)/oathdesk serve $(SERVE_ARGS)

demo: $(STAMP)
	@$(BIN)/oathdesk demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The NFC tests share one virtual reader (and its port): they run after the rest, in one
# process. xdist's loadgroup scheduling was seen to split their group across workers.
unit: $(STAMP) system-deps
	$(BIN)/pytest -n 2 --dist loadgroup -m "not pcsc"
	$(BIN)/pytest -m pcsc

test: lint typecheck unit

# Retake the console screenshots in docs/screenshots with the browser tests.
screenshots: $(STAMP) system-deps
	OATHDESK_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -m browser tests/web/browser

bench: $(STAMP) system-deps
	@$(BIN)/python -m compileall -q src benchmarks
	$(BIN)/python -m benchmarks.run

# Regenerate the lock file from the ranges in pyproject.toml.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install -q -e '.[dev,nfc]'
	.lockenv/bin/pip freeze --exclude-editable | grep -v '^oathdesk' > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
