# All set-up happens here: each target creates .venv on first use.
PY ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin
# torch/torchvision versions pip takes from this machine's disk (override on other machines: make TORCH_PINS=)
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e ".[all,dev]"
	touch $@

venv: $(BIN)/.installed

demo: venv
	HF_HUB_OFFLINE=1 $(BIN)/nlp-cv-tricks train recipes/quickstart.yaml

# lint: ruff (pyflakes + a complexity ceiling, pyproject.toml [tool.ruff]); part of `make test`
lint: venv
	$(BIN)/ruff check nlp_cv_tricks scripts tests examples

# PYTEST_ARGS: extra pytest options (.ci/run passes --runslow)
test: venv lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests $(PYTEST_ARGS)

.PHONY: venv demo lint test
