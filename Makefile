# gflow_lite: `make book` (set up + execute every chapter on CPU + build the HTML book), `make test`.
# Offline-friendly: only the package registries are needed, once, to create .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Which build of PyTorch `make setup` installs: TORCH=cpu, TORCH=cuda, or TORCH=auto (the default: cuda
# where `nvidia-smi -L` lists a GPU, else cpu). The version is pinned here (and only here). The CPU build is
# the `+cpu` wheel (TORCH=cpu: torch==2.13.0+cpu; TORCH=cuda: torch==2.13.0): from PyTorch's CPU wheel index,
# given as TORCH_CPU_INDEX=<url> (README, "Set-up"), or
# from pip's configured sources; if none has it, pip stops with an error instead of pulling a CUDA build.
TORCH_VERSION ?= 2.13.0
TORCH ?= auto
TORCH_CPU_INDEX ?=
TORCH_BUILD := $(if $(filter auto,$(TORCH)),$(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu),$(TORCH))
TORCH_PIN := $(if $(filter cpu,$(TORCH_BUILD)),torch==$(TORCH_VERSION)+cpu,torch==$(TORCH_VERSION))
STAMP := $(VENV)/.installed
export GFLOW_QUICK ?= 1
export TQDM_DISABLE ?= 1
export MPLBACKEND ?= Agg
export PYTHONHASHSEED ?= 0

.PHONY: setup book notebooks chromium test test-fast lab bench paper clean help student-release grade

help:
	@echo "make book   - set up .venv, execute every chapter (quick mode, CPU) and build book/_build/html"
	@echo "make test   - set up .venv and run the whole test suite (unit, notebooks, slow tier)"
	@echo "make lab    - open the book in JupyterLab"
	@echo "make bench  - run the four benchmarks at full size into results/bench/"
	@echo "make paper  - on a CUDA GPU: the paper's 6- and 12-layer presets, both models (SEEDS=1), into results/wikitext2/"
	@echo "make notebooks - regenerate book/NN_*.ipynb (output-free), Colab badges and cells from book/NN_*.py"
	@echo "make student-release OUT=DIR - the book as students get it (no solutions, grader or answers)"
	@echo "make grade SUBMISSIONS=DIR OUT=FILE.csv - grade DIR/<student>/<NN_chapter>.ipynb against the hidden tests"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@case "$(TORCH_BUILD)" in cpu|cuda) ;; *) echo "TORCH=$(TORCH): use cpu, cuda or auto" >&2; exit 2;; esac
	@echo "make setup: installing $(TORCH_PIN) ($(TORCH_BUILD) build; TORCH=$(TORCH)), numpy, then gflow_lite[book,test,snli,native]"
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)" numpy $(if $(TORCH_CPU_INDEX),--extra-index-url $(TORCH_CPU_INDEX)) || \
	  { echo "could not install $(TORCH_PIN); for the CPU build set TORCH_CPU_INDEX to PyTorch's CPU wheel index, or use TORCH=cuda" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet -e ".[book,test,snli,native]"
	touch $(STAMP)

# The chapters' sources are book/NN_topic.py; their .ipynb, Colab badges and Colab cells are generated.
notebooks: setup
	$(BIN)/python book/sync.py

# -W -n --keep-going: a failing cell or any Sphinx warning fails the build. Figures use the inline backend.
# Then a table of each chapter's execution time (recorded by myst-nb in the build) and the build's wall time.
book: notebooks
	@start=$$(date +%s); env -u MPLBACKEND $(BIN)/jupyter-book build -W -n --keep-going book/; rc=$$?; \
	echo; $(BIN)/python book/sync.py --times book/_build; \
	echo "jupyter-book build: $$(( $$(date +%s) - start )) s wall time"; \
	if [ $$rc -eq 0 ]; then echo "book built: book/_build/html/index.html"; fi; exit $$rc

# Headless Chromium for tests/test_browser.py (Debian package; needs root). If it cannot be installed,
# the browser tests skip and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    || echo "warning: could not install chromium; the browser tests will skip" >&2; \
	  else echo "warning: chromium missing (install the 'chromium' package as root); the browser tests will skip" >&2; fi; }

test: setup chromium
	$(BIN)/python -m pytest -q -ra --durations=15 tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the test paths are wrong" >&2; fi; exit $$rc

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" tests

# The four benchmarks at full size (minutes each on 2 cores); results files under results/bench/.
bench: setup
	for b in scaling kernel decode train; do \
	  $(BIN)/python -m gflow_lite bench $$b --threads 1 --json results/bench/$$b.json || exit 1; done

# The paper's two settings end to end (WordPiece 30,522, 30 epochs; device auto = CUDA when present), both
# models, SEEDS seeds each; finished runs are reused, interrupted ones resume. README gives the estimated time.
SEEDS ?= 1
paper: setup
	for p in paper-6l paper-12l; do \
	  $(BIN)/python -m gflow_lite compare --preset $$p --seeds $(SEEDS) --jobs 1 --out results/wikitext2/$$p || exit 1; done

lab: setup
	$(BIN)/jupyter lab book/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# Assessment (book/grading, instructor side; see book/instructors.md). The student repository and branch
# come from student_release in book/_config.yml; STUDENT_REPO / STUDENT_BRANCH override them.
student-release: setup
	@test -n "$(OUT)" || { echo "usage: make student-release OUT=DIR [STUDENT_REPO=https://github.com/OWNER/NAME] [STUDENT_BRANCH=main]" >&2; exit 2; }
	cd book && ../$(BIN)/python -m grading.release --out "$(abspath $(OUT))" \
	  $(if $(STUDENT_REPO),--repo "$(STUDENT_REPO)") $(if $(STUDENT_BRANCH),--branch "$(STUDENT_BRANCH)")

# GRADE_FLAGS: e.g. --chapters 01_geometry,02_layer --timeout 120 --memory-mb 4096 --seed 7
grade: setup
	@test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { echo "usage: make grade SUBMISSIONS=DIR OUT=FILE.csv [GRADE_FLAGS=...]" >&2; exit 2; }
	cd book && ../$(BIN)/python -m grading --submissions "$(abspath $(SUBMISSIONS))" --out "$(abspath $(OUT))" $(GRADE_FLAGS)

clean:
	rm -rf book/_build .pytest_cache
