# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Local wheels on the development machines; elsewhere override, e.g. `make TORCH="torch torchvision" demo`.
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,pretrained,detect,video,serve,export,caption]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/cnnlab train

test: install
	$(PY) -m pytest

# The suite without the tests marked slow (training runs, subprocesses): about a minute or two.
.PHONY: test-fast
test-fast: install
	$(PY) -m pytest -m "not slow"

# Speed beside the lectures' loop and Lightning: benchmarks/results/<date>-<machine>.{json,md}.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

.PHONY: bench
bench: $(VENV)/.bench-installed
	$(VENV)/bin/cnnlab bench

clean:
	rm -rf $(VENV) runs .pytest_cache
