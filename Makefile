# Two commands on a fresh clone: `make run` and `make test`. Both build .venv from scratch if needed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast test-isolation lint format bench-ingest serve screenshot chromium clean docs

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/assay run

# pytest: two workers, whole files each (the ops tests mostly wait on servers while others train)
test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The inner loop: no servers, no Adult training, tiny configs (under 3 minutes on 2 cores)
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q -m "not slow and not ops"

# Every test passes alone and in any order: 20 tests drawn (seeded), each alone, then shuffled
# (pytest-randomly) and reversed
test-isolation: $(STAMP)
	$(BIN)/python -m tests.isolation --sample 20

# The documentation site (docs/, mkdocs.yml) into site/; the spec reference is generated
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench-ingest: $(STAMP)
	$(BIN)/assay bench ingest

serve: $(STAMP)
	$(BIN)/assay serve

# Headless Chromium (Debian's package) draws the Prefect UI screenshots; the test that checks
# them is skipped where it cannot be installed (no root, no Debian).
chromium:
	@command -v chromium >/dev/null || (apt-get install -y -q chromium >/dev/null 2>&1 \
	  || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
	  || echo "chromium not installed: the Prefect UI screenshot test will be skipped"

# With `assay serve` running and a completed train run: docs/prefect-*.png
screenshot: $(STAMP) chromium
	$(BIN)/python -m deployments.screenshot --api $${PREFECT_API_URL:-http://127.0.0.1:4200/api} --out docs

clean:
	rm -rf $(VENV) .assay site
