# kkc: `make demo` and `make test` work on a fresh machine with python3, git and
# kubectl (or kustomize). Each target creates/updates the project venv in .venv/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-fast lint goldens bench crd-schemas clean e2e

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $@

# The real kolla package of each release, unpacked for the cross-checks of
# tests/test_kollacheck.py (which skip without it); versions from compiler/kkc/data/kolla.
KOLLA_DIR   := $(VENV)/kolla
KOLLA_STAMP := $(KOLLA_DIR)/.unpacked
$(KOLLA_STAMP): $(STAMP) $(wildcard compiler/kkc/data/kolla/*.json) tools/gen-kolla-data
	@$(BIN)/python tools/gen-kolla-data --unpack $(KOLLA_DIR) && touch $@ \
	  || echo "warning: kolla packages not fetched; tests/test_kollacheck.py will skip its cross-checks"

venv: $(STAMP) $(KOLLA_STAMP)

demo: venv  ## compile the example site into a scratch git repository and show the result
	PATH="$(CURDIR)/$(BIN):$$PATH" tools/demo

test: venv  ## the whole test suite (offline), one worker per CPU (pytest-xdist); lists the 15 slowest
	$(BIN)/python -m pytest -q -n auto --dist worksteal --durations=15

test-fast: venv  ## the inner loop: every test but the slow end-to-end scenarios (-m "not slow")
	$(BIN)/python -m pytest -q -n auto --dist worksteal -m "not slow"

lint: venv
	$(BIN)/ruff check compiler tests tools tools/gen-kolla-data tools/gen-crd-schemas

goldens: venv  ## regenerate tests/golden/ from the example sites; review with `git diff`
	KKC_UPDATE_GOLDENS=1 $(BIN)/python -m pytest -q tests/test_golden.py tests/test_upgrade_plan.py -k "golden"
	@echo "Goldens regenerated. Review the change with: git diff -- tests/golden"

bench: venv  ## kkc against bare kustomize: site-a, and generated fleets (BENCH_SITES=10,100; docs/performance.md)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python tools/bench.py

crd-schemas: venv  ## regenerate compiler/kkc/data/crds/ (CRDS=DIR for another CRD directory; docs/crd-schemas.md)
	$(BIN)/python tools/gen-crd-schemas $(if $(CRDS),--crds $(CRDS))

e2e: venv  ## bring up every example site for real, as root (docs/e2e.md); not part of make test
	PYTHONPATH="$(CURDIR)/e2e" KKC_E2E_KOLLA_DIR="$(CURDIR)/$(KOLLA_DIR)" $(BIN)/python -m kkc_e2e $(E2E_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache
