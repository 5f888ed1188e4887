# The two commands the README opens with. Both build .venv from nothing but python3.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test venv clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# The official BFCL checker, the oracle of tests/test_bfcl_official.py. Without its
	# dependencies: they pin numpy 1.26 and API clients that conflict with ours, and the AST
	# checker needs none of them.
	$(VENV)/bin/python -m pip install --quiet --no-deps bfcl-eval==2025.7.17
	touch $(STAMP)

venv: $(STAMP)

# The main job: the built-in tiny recipe, the whole cascade on CPU.
demo: $(STAMP)
	$(VENV)/bin/cascade run

# The test suite. Extra pytest flags: make test PYTEST_ARGS="-k chat"
test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info
