# The two commands of the README: `make run` (start everything locally) and `make test` (every test).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# pytest processes for make test (tests/conftest.py keeps a module, and the Samba DC's modules, in one process)
TEST_WORKERS ?= 2

.PHONY: install run test bench clean

install: $(VENV)/.installed devtools/node_modules/.installed web/assets/vendor/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

devtools/node_modules/.installed: devtools/package.json devtools/package-lock.json
	cd devtools && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The pages' browser libraries come from npm (no CDN); their built files are copied next to our own assets:
# altcha (the reset page's robot check) and axe-core (the accessibility check the e2e tests run in each page).
web/assets/vendor/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	rm -rf web/assets/vendor && mkdir -p web/assets/vendor/altcha web/assets/vendor/axe-core
	cp web/node_modules/altcha/dist_external/altcha.js web/node_modules/altcha/dist_external/worker.js \
	   web/node_modules/altcha/dist_external/altcha.css web/node_modules/altcha/LICENSE.txt web/assets/vendor/altcha/
	cp web/node_modules/axe-core/axe.min.js web/node_modules/axe-core/LICENSE web/assets/vendor/axe-core/
	@touch $@

run: install
	SSPR_RUN_ONPREM=$(ONPREM) $(PY) -m devtools.run

test: install
	$(PY) -m ruff check .
	$(PY) -m mypy shared functions scripts
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf .data .run test-artifacts .pytest_cache
