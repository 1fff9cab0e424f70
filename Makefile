# Two jobs a person runs on a fresh clone:
#   make lab    set up .venv and open the course in JupyterLab   (make run: execute it headless)
#   make test   set up .venv with the test tools and run the whole suite
PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
CONSTRAINTS ?= constraints/tested.txt
PROFILE     ?= auto
PYTEST_ARGS ?= -n auto

.PHONY: lab run test bench exercises check-env clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.course-installed: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.course-installed
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev,instructor]'
	touch $@

lab: $(VENV)/.course-installed
	$(BIN)/lowlight-course doctor
	$(BIN)/jupyter lab notebooks/

run: $(VENV)/.course-installed
	$(BIN)/lowlight-course run --profile $(PROFILE) --output build

test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_losses.py

exercises: $(VENV)/.course-installed
	$(BIN)/lowlight-course build-exercises

clean:
	rm -rf build .pytest_cache
