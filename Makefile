# flowstate: `make demo` and `make test` are all a newcomer needs.

GO        ?= go
BIN       := bin
PLUGINS   := $(patsubst plugins/%/main.go,$(BIN)/plugins/%.wasm,$(wildcard plugins/*/main.go))
GOFILES   := $(shell find . -name '*.go' -not -path './bin/*' 2>/dev/null)
TESTFLAGS ?= -timeout 25m

export CGO_ENABLED := 1

.PHONY: all deps build plugins test fuzz demo bench crash clean

all: build

# deps installs missing system packages (librocksdb-dev, wabt) with apt-get.
deps:
	@./scripts/deps.sh

build: deps $(BIN)/flowstate plugins

$(BIN)/flowstate: $(GOFILES) go.mod go.sum
	$(GO) build -o $@ ./cmd/flowstate

plugins: $(PLUGINS)

$(BIN)/plugins/%.wasm: plugins/%/main.go $(GOFILES)
	@mkdir -p $(BIN)/plugins
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./plugins/$*

test: build
	$(GO) vet ./...
	cd abi && $(GO) vet ./... && $(GO) test ./...
	cd sdk && $(GO) vet ./... && $(GO) test ./...
	$(GO) test $(TESTFLAGS) ./...
	$(call fuzz-each,5s)

# FUZZ lists the fuzz targets as folder:Target; abi is its own module. Each
# runs on its checked-in corpus (testdata/fuzz) and then for the given time;
# `make test` gives each 5s, `make fuzz` FUZZTIME.
FUZZ     := abi:FuzzBatchReader host:FuzzHostFunctions host:FuzzPrepareModule
FUZZTIME ?= 2m

define fuzz-each
	@set -e; for t in $(FUZZ); do \
		dir=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$dir $$name for $(1)"; \
		if [ -f $$dir/go.mod ]; then \
			(cd $$dir && $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(1) -fuzzminimizetime 1s .); \
		else \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(1) -fuzzminimizetime 1s ./$$dir; \
		fi; \
	done
endef

fuzz: deps
	$(call fuzz-each,$(FUZZTIME))

demo: build
	./$(BIN)/flowstate dev -c examples/wordcount.yaml \
		--feed sentences=examples/sentences.txt --print word-counts --exit-when-done

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s ./host/ ./engine/

# crash runs the crash suite long: KILLS SIGKILLs of the host at seeded
# random moments, then a summary table (kills, records, lost, duplicated,
# the most changelog records one task replayed after a kill).
KILLS ?= 50
crash: deps
	$(GO) test ./cmd/flowstate -run '^TestCrash$$' -count=1 -v -timeout 60m \
		-args -crash.kills=$(KILLS) -crash.records=$$(( $(KILLS) * 4000 ))

clean:
	rm -rf $(BIN) .state
