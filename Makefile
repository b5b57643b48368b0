# Two entry points: `make demo` and `make test`. Both create .venv when missing and
# install the project with every extra, so a fresh clone needs nothing by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test explore install bench fuzz clean

demo: $(STAMP)
	$(BIN)/usidbridge demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# the property tests with new random examples each run (make test always draws the same ones)
explore: $(STAMP)
	USIDBRIDGE_HYPOTHESIS=explore $(BIN)/python -m pytest -q -n 2 --dist loadfile

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.2"
	$(BIN)/python -m pip install --quiet -e ".[all,test]"
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/python bench/bench_h5usid.py
	$(BIN)/python bench/bench_images.py
	$(BIN)/python bench/bench_writers.py --record
	$(BIN)/python bench/bench_convert.py --record
	$(BIN)/python bench/bench_spec.py --record
	$(BIN)/python bench/bench_small_reads.py --record
	$(BIN)/python bench/bench_tables.py --record
	$(BIN)/python bench/bench_many_files.py --files 600 --rounds 3 --dir /dev/shm --record

fuzz: $(STAMP)
	$(BIN)/python bench/fuzz.py --per-format 2000 --record

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
