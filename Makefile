# flowstate: `make demo` and `make test` are all a newcomer needs.

GO        ?= go
BIN       := bin
PLUGINS   := $(patsubst plugins/%/main.go,$(BIN)/plugins/%.wasm,$(wildcard plugins/*/main.go))
GOFILES   := $(shell find . -name '*.go' -not -path './bin/*' 2>/dev/null)
# The AssemblyScript modules: the SDK's example and its conformance processor.
AS_MODULES := $(BIN)/plugins/wordcount-as.wasm $(BIN)/conformance/as.wasm
AS_SOURCES := $(shell find sdk/assemblyscript/assembly plugins/wordcount-as/assembly conformance/guest/as -name '*.ts' 2>/dev/null) \
	sdk/assemblyscript/package.json sdk/assemblyscript/package-lock.json scripts/asbuild.sh
TESTFLAGS ?= -timeout 25m

export CGO_ENABLED := 1

.PHONY: all deps build plugins asbuild test fuzz demo bench crash clean

all: build

# deps installs missing system packages (librocksdb-dev, wabt) with apt-get.
deps:
	@./scripts/deps.sh

build: deps $(BIN)/flowstate plugins asbuild

$(BIN)/flowstate: $(GOFILES) go.mod go.sum
	$(GO) build -o $@ ./cmd/flowstate

plugins: $(PLUGINS)

# asbuild compiles the AssemblyScript modules; the script runs npm ci in
# sdk/assemblyscript when its node_modules is missing or stale.
asbuild: $(AS_MODULES)

$(AS_MODULES) &: $(AS_SOURCES)
	./scripts/asbuild.sh $(BIN)

$(BIN)/plugins/%.wasm: plugins/%/main.go $(GOFILES)
	@mkdir -p $(BIN)/plugins
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./plugins/$*

# RACE are the packages that start goroutines (and the small ones beside
# them): `make test` runs them under the race detector. Two run only in
# part under it. Under -race wazero compiles a Go guest about 15 times
# slower (0.8 s to 12 s on 2 cores), which takes the engine tests that start
# engine after engine past their deadlines; RACE_ENGINE picks the engine's
# concurrency tests that fit (the turn pool, assignment, whole engines
# processing, fencing, a crash mid-commit, restores; the balancer's adapter
# and its end-offset listing, together about 1 s), and the rest of engine
# runs without -race. CMD_PROCESSES, the crash and scale-out suites, run
# flowstate as separate processes, where -race on the test binary checks
# only the harness; the rest of cmd/flowstate runs under -race.
RACE          := ./state/... ./restore/... ./host/... ./conformance/... ./internal/... ./engine/internal/... ./cmd/flowstate/internal/...
RACE_ENGINE   := ^(TestInbox.*|TestAssign.*|TestUserData|TestBalancer.*|TestParseSyncAssignment|TestEndOffsets|TestStoreStates|TestStandbyAssignmentData|TestStaticJoin|TestTurnPool|TestWarmupsForgottenOnJoin|TestWordcount|TestWordcountExactlyOnce|TestCrashBetweenKafkaAndRocksDB|TestExactlyOnceFailedTaskCommitsNothing|TestFencing|TestTruncatedChangelog|TestScaleOutStickyLagAware)$$
CMD_PROCESSES := ^(TestCrash|TestScaleOut)$$
# ARTIFACTS keeps what tests leave to look at: the status page's
# screenshots from headless chromium (TestStatusPage).
ARTIFACTS     := $(CURDIR)/$(BIN)/test-artifacts
# OTHERS are the packages the lines above do not run (the plugins).
OTHERS         = $(filter-out $(shell $(GO) list $(RACE) ./engine ./cmd/flowstate),$(shell $(GO) list ./...))

test: build
	$(GO) vet ./...
	cd abi && $(GO) vet ./... && $(GO) test ./...
	cd sdk && $(GO) vet ./... && $(GO) test ./...
	$(GO) test $(TESTFLAGS) -race $(RACE)
	$(GO) test $(TESTFLAGS) -race -run '$(RACE_ENGINE)' ./engine/
	$(GO) test $(TESTFLAGS) -skip '$(RACE_ENGINE)' ./engine/
	@mkdir -p $(ARTIFACTS)
	$(GO) test $(TESTFLAGS) -race -skip '$(CMD_PROCESSES)' -artifacts -outputdir $(ARTIFACTS) ./cmd/flowstate/
	$(GO) test $(TESTFLAGS) -run '$(CMD_PROCESSES)' ./cmd/flowstate/
	$(GO) test $(TESTFLAGS) $(OTHERS)
	./$(BIN)/flowstate conformance --guest $(BIN)/conformance/as.wasm
	$(call fuzz-each,)

# FUZZ lists the fuzz targets as folder:Target:count; abi is its own module.
# Each runs on its checked-in corpus (testdata/fuzz) and then: in `make test`
# for its count of executions (about 4s each on 2 cores), in `make fuzz` for
# FUZZTIME. A count, unlike a duration, does not race the fuzz coordinator's
# deadline, which fails a run with a bare "context deadline exceeded" under
# load before Go 1.27 (go.dev/issue/75804).
FUZZ     := abi:FuzzBatchReader:150000 host:FuzzHostFunctions:4000 host:FuzzPrepareModule:30000 host:FuzzInstrument:4000
FUZZTIME ?= 2m

# fuzz-each runs every target of FUZZ for $(1), or for its count when $(1)
# is empty.
define fuzz-each
	@set -e; for t in $(FUZZ); do \
		dir=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget="$(1)"; \
		[ -n "$$budget" ] || budget=$${rest##*:}x; \
		echo "fuzz $$dir $$name for $$budget"; \
		if [ -f $$dir/go.mod ]; then \
			(cd $$dir && $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget -fuzzminimizetime 1s .); \
		else \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget -fuzzminimizetime 1s ./$$dir; \
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
# the most changelog records one task replayed after a kill), then one kill
# at each named crash point (internal/crashpoint) with a line each.
KILLS ?= 50
crash: deps
	$(GO) test ./cmd/flowstate -run '^TestCrash$$' -count=1 -v -timeout 60m \
		-args -crash.kills=$(KILLS) -crash.records=$$(( $(KILLS) * 4000 ))

clean:
	rm -rf $(BIN) .state
