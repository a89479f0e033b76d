# Oxcross. `make demo` and `make test` are the README's two commands.
GO ?= go

.PHONY: all build demo test lint fuzz clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint:
	gofmt -l .
	$(GO) vet ./...
	$(GO) tool -modfile=tools/go.mod staticcheck ./...

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=5m ./discovery

clean:
	rm -rf bin dist
