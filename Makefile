# kafka-mirror-tester (kmt). `make help` lists the targets.
GO           ?= go
TEST_TIMEOUT ?= 45m
BIN          ?= bin/kmt
VERSION      ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: help build test deps kafka demo bench charts image lint fuzz clean

help: ## this list
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/kmt
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/kmt

deps: ## install the real third-party peers the tests use (kcat, prometheus, etcd) if missing
	./scripts/install-deps.sh

kafka: ## assemble Apache Kafka's libs/ from Maven Central into the kmt cache (once; needs mvn + java)
	./scripts/kafka-libs.sh >/dev/null

# -p 1: one package at a time. The end-to-end packages run real clusters,
# mirrors and WAN faults and measure their effect; on a 2-core machine two of
# them side by side would measure each other.
test: deps kafka ## the whole test suite (what CI runs)
	$(GO) vet ./...
	$(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) ./...

demo: ## the README demo: baseline on two embedded clusters
	$(GO) run ./cmd/kmt run baseline

bench: ## benchmarks as a table: loadgen max rate, validator vs bare reader, memory per record
	./scripts/bench.sh

charts: ## regenerate charts/ from the catalogue
	$(GO) run ./internal/charts/cmd/gencharts

image: ## build the kmt container image (needs a Docker engine)
	docker build -t kmt:dev .

fuzz: ## fuzz the record decoder for 60s
	$(GO) test ./internal/wire -run '^$$' -fuzz FuzzDecode -fuzztime 60s

clean: ## remove build output and reports
	rm -rf bin reports

-include kind/kind.mk
