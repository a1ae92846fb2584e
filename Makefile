# Mizuchi Uploadr — `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/mizuchi-uploadr
PKGS  := ./...
FUZZTIME ?= 10s
# -version prints these (internal/buildinfo), stamped at link time.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/mizuchi/uploadr/internal/buildinfo.Version=$(VERSION) -X github.com/mizuchi/uploadr/internal/buildinfo.Revision=$(REVISION)

.PHONY: help build run test check lint fuzz cross bench bench-micro setup clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## build bin/mizuchi-uploadr
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mizuchi-uploadr

run: build ## run the proxy (starts a local versitygw upstream when none is configured)
	scripts/run-local.sh

setup: ## install what the tests need (versitygw, OPA, OpenFGA, the JS SDK, s3cmd, rclone, wrk; checks aws cli and boto3)
	scripts/setup.sh

test: setup ## run every test (race detector on) against real versitygw and real clients, then the !race ones (allocation budgets)
	$(GO) test -race -shuffle=on -count=1 -timeout 40m $(PKGS)
	GO=$(GO) scripts/test-norace.sh

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

fuzz: ## run each fuzz target for FUZZTIME (default 10s)
	@set -e; for pkg in ./httpparse ./s3sig ./policy ./uploadid ./engine ./jwtauth ./proxyproto ./cors ./postform; do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    if ! out=$$($(GO) test -run=NONE -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1); then echo "$$out"; \
	      case "$$out" in *"Failing input written"*) exit 1;; *"context deadline exceeded"*) \
	        echo "fuzz $$pkg $$f: the fuzzing engine's own deadline flake (no failing input): once more"; \
	        $(GO) test -run=NONE -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg;; *) exit 1;; esac; \
	    else echo "$$out" | tail -2; fi; \
	  done; done

cross: ## cross-build for darwin and windows
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./...
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./...

bench-micro: ## run every Go micro-benchmark once (keeps them compiling and working)
	$(GO) test -run=NONE -bench=. -benchtime=1x $(PKGS)

bench: build ## end-to-end benchmarks, quick run (scripts/bench.sh quick; `scripts/bench.sh full` for all; `BASELINE_REV=<commit> scripts/bench.sh compare` against a revision) + micro-benchmarks
	scripts/bench.sh quick

# release links with $(LDFLAGS) (the version stamp of every build) plus -s -w.
DIST ?= dist
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
.PHONY: release
release: ## static binaries for linux amd64 and arm64 in dist/ (CGO_ENABLED=0, -trimpath, stripped), SHA256SUMS, licenses
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(RELEASE_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; out=$(DIST)/mizuchi-uploadr-$$os-$$arch; \
	  echo "build $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $$out ./cmd/mizuchi-uploadr; \
	  $(GO) version -m $$out | grep -qE '^\s+build\s+CGO_ENABLED=0$$' || { echo "$$out: not built with CGO_ENABLED=0"; exit 1; }; \
	  if command -v readelf >/dev/null; then \
	    if LC_ALL=C readelf -lW $$out | grep -q 'INTERP'; then echo "$$out: dynamically linked (has PT_INTERP)"; exit 1; fi; \
	  else echo "readelf not installed: ELF check skipped (deploy/release_test.go does it)"; fi; \
	done
	cp LICENSE $(DIST)/LICENSE
	@set -e; for m in $$(GOOS=linux CGO_ENABLED=0 $(GO) list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}}={{.Dir}}{{end}}{{end}}' ./cmd/mizuchi-uploadr | sort -u); do \
	  dir=$${m#*=}; files=$$(ls "$$dir" | grep -E '^(LICEN[CS]E|COPYING|NOTICE)' || true); \
	  [ -n "$$files" ] || { echo "$${m%%=*}: no license file"; exit 1; }; \
	  for f in $$files; do printf '==== %s %s\n\n' "$${m%%=*}" "$$f"; cat "$$dir/$$f"; printf '\n'; done; \
	done > $(DIST)/THIRD-PARTY-LICENSES.txt
	cd $(DIST) && sha256sum mizuchi-uploadr-* LICENSE THIRD-PARTY-LICENSES.txt > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

check: lint test fuzz cross bench-micro ## the gate: lint, tests with -race, short fuzz, cross-builds, benchmarks once

clean: ## remove build outputs and local run state
	rm -rf bin .run $(DIST)
