# flowstate: `make demo` and `make test` are all a newcomer needs.

GO        ?= go
BIN       := bin
PLUGINS   := $(patsubst plugins/%/main.go,$(BIN)/plugins/%.wasm,$(wildcard plugins/*/main.go))
GOFILES   := $(shell find . -name '*.go' -not -path './bin/*' 2>/dev/null)
TESTFLAGS ?= -timeout 25m

export CGO_ENABLED := 1

.PHONY: all deps build plugins test demo bench fuzz clean

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

demo: build
	./$(BIN)/flowstate dev -c examples/wordcount.yaml \
		--feed sentences=examples/sentences.txt --print word-counts --exit-when-done

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s ./host/ ./engine/

clean:
	rm -rf $(BIN) .state
