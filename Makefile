# The two commands the README opens with. Both build .venv from nothing but python3.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test mutation venv clean

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

# Mutation testing (a report, not part of `make test`; see docs/testing.md). It runs at low
# priority; pick groups with: make mutation MUTATION_ARGS="rewards grpo-wiring"
mutation: $(STAMP)
	nice -n 15 $(VENV)/bin/python benchmarks/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info
