# Set-up and the main jobs. Everything a fresh machine needs is installed here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch must come from the local CPU wheel (2.13.0); see requirements/constraints.txt
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q $(FIND_LINKS) -c requirements/constraints.txt

.PHONY: demo test bench gallery clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-base: pyproject.toml requirements/constraints.txt | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements/constraints.txt | $(BIN)/python
	$(PIP) -e ".[test]"
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/tconv explain 8x8 -f keras -k 3 -s 2 -p same
	@echo
	$(BIN)/tconv shape 12x16 -f keras -k 3 -s 2 -p same

test: $(VENV)/.installed-test
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info

gallery: $(VENV)/.installed-test
	$(BIN)/python docs/gallery/make_gallery.py
