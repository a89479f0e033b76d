# Oxcross. `make demo` and `make test` are the README's two commands.
GO ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null | sed 's/^v//')
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
VPKG     := github.com/prometheus/common/version
LDFLAGS  := -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION) -X $(VPKG).Branch=$(BRANCH) \
            -X $(VPKG).BuildUser=$(shell id -un)@$(shell hostname) -X $(VPKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: all build demo test lint fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

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
