# Two jobs a person runs on a fresh clone:
#   make lab    set up .venv and open the course in JupyterLab   (make run: execute it headless)
#   make test   set up .venv with the test tools and run the whole suite
PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
CONSTRAINTS ?= constraints/tested.txt
PROFILE     ?= auto
PYTEST_ARGS ?= -n auto

.PHONY: lab run test test-suite test-course bench exercises check-env clean book

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

# `make test` is CI, in the order a failure is cheapest to find:
#   install     the package, test tools, book and browser tools (Chromium from Debian, npm packages)
#   suite       unit tests; every notebook under smoke: papermill on the plain kernels, nbval on this
#               machine's, one thread each (tests/test_notebooks.py); not the browser, hub or site tests
#   wheel-test  every lecture, solution and exercise under smoke from an installed wheel outside the
#               repository, AVX2 kernels, 2 threads
#   book        the website from those executed copies; then the site, JupyterLab and website browser tests
#   hub-test    a real JupyterHub, one learner then four, nbgitpuller updates
#   test-course every lecture and solution under cpu on this machine's and on AVX2 kernels, 2 threads
SUITE_IGNORE = --ignore=tests/browser --ignore=tests/hub --ignore=tests/site
CI_ROW       = build/course/wheel-smoke-avx2
test:
	@.ci/timed "install: venv, package, test, book and browser tools" $(MAKE) --no-print-directory \
	  $(VENV)/.dev-installed $(VENV)/.book-installed $(MATHJAX) $(VENV)/.hub-installed $(CHP)
	@.ci/timed "suite: unit tests; every notebook under smoke, 1 thread (papermill, nbval)" \
	  $(BIN)/python -m pytest $(PYTEST_ARGS) $(SUITE_IGNORE)
	@$(MAKE) --no-print-directory wheel-test
	@.ci/timed "book: the website from the wheel row's executed copies (smoke)" \
	  $(MAKE) --no-print-directory book PROFILE=smoke BOOK_EXECUTED=$(CI_ROW)
	@.ci/timed "site and browser: built pages; chapter 04 in JupyterLab; the website in Chromium" \
	  env LOWLIGHT_BOOK=$(abspath build/book) $(BROWSER_PYTEST) tests/site tests/browser
	@.ci/timed "hub: JupyterHub, one learner then four, nbgitpuller update" $(MAKE) --no-print-directory hub-test
	@$(MAKE) --no-print-directory test-course

test-suite: $(VENV)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS) $(SUITE_IGNORE)

# Every lecture and solution, headless, the way learners run them, on the CPU kernels other machines
# pick (ATEN_CPU_CAPABILITY; oneDNN and MKL limited to match). An assert that flips between rows states
# rounding noise, not an effect. The kernel matrix: smoke on the plain kernels with 1 thread (the
# suite's papermill run), on this machine's with 1 thread (nbval), on AVX2 with 2 threads (wheel-test);
# cpu on this machine's and on AVX2 kernels with 2 threads (here). Each row writes the executed
# notebooks and timings.json under build/course/<row>/.
# Figures go into the executed copies (the kernel's inline backend: no MPLBACKEND), so the book can use them.
COURSE_RUN  = OMP_NUM_THREADS=2 $(BIN)/lowlight-course run --solutions --no-html
KERNELS_DEFAULT = ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2
KERNELS_AVX2    = ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
test-course: $(VENV)/.course-installed
	@.ci/timed "course: cpu, this machine's kernels, 2 threads" env -u MPLBACKEND $(COURSE_RUN) --profile cpu --output build/course/cpu-native
	@.ci/timed "course: cpu, AVX2 kernels, 2 threads" env -u MPLBACKEND $(KERNELS_AVX2) $(COURSE_RUN) --profile cpu --output build/course/cpu-avx2

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_losses.py

exercises: $(VENV)/.course-installed
	$(BIN)/lowlight-course build-exercises

# `make wheel-test`: the course from an installed wheel, outside the repository (.ci/wheel_course.sh):
# build the wheel, install it in a fresh venv with $(CONSTRAINTS), get-course into a temporary folder,
# run every lecture, solution and exercise there under smoke (AVX2 kernels, 2 threads). It stands in
# for test-course's "smoke, AVX2 kernels" row; executed copies and timings.json in build/course/wheel-smoke-avx2/.
.PHONY: wheel-test
wheel-test: $(VENV)/.course-installed
	@.ci/timed "course from the wheel, outside the repo: smoke, AVX2 kernels, 2 threads" env -u MPLBACKEND $(KERNELS_AVX2) \
	  OMP_NUM_THREADS=2 PYTHON=$(PYTHON) CONSTRAINTS=$(abspath $(CONSTRAINTS)) \
	  .ci/wheel_course.sh build/course/wheel-smoke-avx2

# `make book`: the executed course as a static website in build/book/ (Sphinx + MyST-NB, offline:
# MathJax 3 from the npm registry, served by the site). Outputs come from executed copies in
# BOOK_EXECUTED (PROFILE, default cpu; run there first when missing or older than the notebooks);
# notebooks/ stays without outputs. CI: make book PROFILE=smoke BOOK_EXECUTED=<a course row it ran>.
# SOLUTIONS=0 leaves the solutions part out (a graded course).
BOOK_PROFILE  = $(if $(filter auto,$(PROFILE)),cpu,$(PROFILE))
BOOK_EXECUTED ?= build/course/book-$(BOOK_PROFILE)
SOLUTIONS     ?= 1
BOOK_FLAGS     = $(if $(filter 0,$(SOLUTIONS)),--no-solutions,)
MATHJAX        = build/npm/node_modules/mathjax/es5/tex-chtml.js

$(VENV)/.book-installed: $(VENV)/.course-installed
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[book]'
	touch $@

$(MATHJAX):
	npm install --silent --no-audit --no-fund --prefix build/npm mathjax@3

book: $(VENV)/.book-installed $(MATHJAX)
	@$(BIN)/python book/build.py --executed $(BOOK_EXECUTED) --profile $(BOOK_PROFILE) --check-fresh $(BOOK_FLAGS) || \
	  env -u MPLBACKEND OMP_NUM_THREADS=2 $(BIN)/lowlight-course run $(if $(filter 0,$(SOLUTIONS)),,--solutions) --no-html \
	    --profile $(BOOK_PROFILE) --output $(BOOK_EXECUTED)
	$(BIN)/python book/build.py --executed $(BOOK_EXECUTED) --output build/book $(BOOK_FLAGS)

# `make browser-test`: chapter 04 in JupyterLab and the built website in Debian's Chromium, driven by
# Playwright as executable_path (Playwright's own browser download is never used). Installs chromium
# with apt-get when it is missing (as root, or with sudo); builds the website (smoke) when build/book/
# is missing and LOWLIGHT_BOOK names none. `make hub-test`: a real JupyterHub on 127.0.0.1 with four
# learners and nbgitpuller; configurable-http-proxy from npm into build/npm/. LOWLIGHT_BROWSER=1: a
# missing tool fails these tests instead of skipping them. Screenshots: build/screenshots/.
.PHONY: browser-test hub-test
BROWSER_PYTEST = LOWLIGHT_BROWSER=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -p no:xdist -q
CHP            = build/npm/node_modules/.bin/configurable-http-proxy

$(VENV)/.browser-installed: $(VENV)/.dev-installed
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get install -y chromium; \
	  else echo "Debian's chromium is missing: run 'apt-get install -y chromium' as root, then make browser-test again"; exit 1; fi; fi
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[browser]'
	touch $@

$(VENV)/.hub-installed: $(VENV)/.browser-installed
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[hub]'
	touch $@

$(CHP):
	npm install --silent --no-audit --no-fund --prefix build/npm configurable-http-proxy@5.3.0

browser-test: $(VENV)/.browser-installed
	@test -f build/book/index.html || [ -n "$(LOWLIGHT_BOOK)" ] || $(MAKE) --no-print-directory book PROFILE=smoke
	$(BROWSER_PYTEST) tests/browser

hub-test: $(VENV)/.hub-installed $(CHP)
	$(BROWSER_PYTEST) tests/hub

clean:
	rm -rf build .pytest_cache
