# Oxcross. `make demo` and `make test` are the README's two commands;
# `make test-busy` runs every Go test while four busy loops keep the cores
# busy (scripts/test-busy.sh): the tests must hold on a loaded machine.
GO ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null | sed 's/^v//')
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
VPKG     := github.com/prometheus/common/version
LDFLAGS  := -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION) -X $(VPKG).Branch=$(BRANCH) \
            -X $(VPKG).BuildUser=$(shell id -un)@$(shell hostname) -X $(VPKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: all build demo test test-busy lint fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

test-busy:
	bash scripts/test-busy.sh

lint:
	gofmt -l .
	$(GO) vet ./...
	$(GO) tool -modfile=tools/go.mod staticcheck ./...

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=5m ./config

clean:
	rm -rf bin dist

# Packages and the container image: packaging/, docs/install.md.
# `make package PKG_ARCHES=amd64` builds one architecture.
PKG_VERSION      ?= $(shell bash packaging/version.sh)
PKG_ARCHES       ?= amd64 arm64
CONTAINER_ENGINE ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
IMAGE            ?= localhost/oxcross-configserver
IMAGE_ARCH       ?= $(shell $(GO) env GOARCH)
CA_BUNDLE        ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: package image

package:
	GO="$(GO)" LDFLAGS="$(LDFLAGS)" PKG_VERSION="$(PKG_VERSION)" bash packaging/package.sh $(PKG_ARCHES)

image:
	@test -n "$(CONTAINER_ENGINE)" || { echo "make image needs podman or docker"; exit 1; }
	rm -rf dist/image && mkdir -p dist/image
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" -o dist/image/ ./cmd/oxcross-configserver
	cp $(CA_BUNDLE) dist/image/ca-certificates.crt
	cp packaging/config/config.yaml dist/image/config.yaml
	$(CONTAINER_ENGINE) build --platform linux/$(IMAGE_ARCH) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		-f packaging/container/Containerfile -t $(IMAGE):$(VERSION) -t $(IMAGE):latest dist/image

# The monitoring mixin: renders mixin/out (alerts, rules, dashboards) from
# mixin/*.libsonnet with go-jsonnet, and from mixin/out the Prometheus
# Operator's packaging/kubernetes/operator/prometheusrule.yaml; commit both
# (mixin/README.md).
.PHONY: mixin

mixin:
	bash mixin/build.sh

# Every fuzz target for 5 minutes each (scripts/test.sh runs them briefly).
.PHONY: fuzz-long

fuzz-long:
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=5m ./config
	FUZZTIME_EACH=5m bash scripts/test.d/50-fuzz.sh

# The benchmark of docs/performance.md: real processes on loopback against
# blackbox_exporter, wrk on the servers; one table. About 7 minutes;
# BENCH_QUICK=1 for about 2.5. Installs wrk and prometheus-blackbox-exporter
# with apt when missing.
.PHONY: bench

bench:
	bash bench/run.sh
