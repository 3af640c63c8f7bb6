# kafka-mirror-tester (kmt). `make help` lists the targets.
GO           ?= go
TEST_TIMEOUT ?= 45m
BIN          ?= bin/kmt
VERSION      ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: help build test test-real deps kafka demo bench charts image lint lint-fix fuzz clean k8s-node-up k8s-node-down test-node test-node-baseline

help: ## this list
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/kmt
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/kmt

deps: ## install the real third-party peers the tests use (kcat, prometheus, etcd) if missing
	./scripts/install-deps.sh

# The whole catalogue (short forms) on real Apache Kafka clusters at the
# scenarios' own broker counts, with the reference mirror and MirrorMaker 2.
test-real: deps kafka ## the whole catalogue on real Apache Kafka with both mirrors (long)
	KMT_REAL_FULL=1 $(GO) test -p 1 -count=1 -timeout 180m -run 'TestCatalogueSubsetOnRealKafka|TestLoadModesOnRealKafka|TestLargeRecordsOnRealKafka|TestFailoverDrillOnRealKafka|TestFailoverFaultsOnRealKafka' -v ./internal/env/apachekafka

kafka: ## assemble Apache Kafka's libs/ from Maven Central into the kmt cache (once; needs mvn + java)
	./scripts/kafka-libs.sh >/dev/null

# -p 1: one package at a time. The end-to-end packages run real clusters,
# mirrors and WAN faults and measure their effect; on a 2-core machine two of
# them side by side would measure each other.
test: deps kafka lint ## the whole test suite (what CI runs): lint, vet, every test
	$(GO) vet ./...
	$(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) ./...

lint: ## golangci-lint (pinned, built once into ~/.cache/kmt): import grouping, unused, errorlint, sloglint
	./scripts/lint.sh

lint-fix: ## fix what lint can fix itself (import grouping)
	./scripts/lint.sh --fix

demo: ## the README demo: baseline on two embedded clusters
	$(GO) run ./cmd/kmt run baseline

bench: kafka ## benchmarks as a table: loadgen max rate, validator vs bare reader, memory per record, kmt vs Apache's perf tools on a real broker
	./scripts/bench.sh

charts: ## regenerate charts/ from the catalogue
	$(GO) run ./internal/kube/charts/cmd/gencharts

image: ## build the kmt container image (needs a Docker engine)
	docker build -t kmt:dev .

fuzz: ## fuzz the record decoder for 60s
	$(GO) test ./internal/check/wire -run '^$$' -fuzz FuzzDecode -fuzztime 60s

# A real Kubernetes node on this machine (containerd + runc + kubelet +
# control plane, built/installed on first use; internal/env/testenv/node).
NODE_BIN ?= bin/kmt-node
k8s-node-up: ## start a real single-machine Kubernetes node in the background (prints its KUBECONFIG)
	$(GO) build -o $(NODE_BIN) ./internal/env/testenv/node/cmd/kmt-node
	$(NODE_BIN) up

k8s-node-down: ## stop that node and remove everything it left (processes, mounts, bridge, folder)
	$(GO) build -o $(NODE_BIN) ./internal/env/testenv/node/cmd/kmt-node
	$(NODE_BIN) down

test-node: ## start a real node, run every part on it (pods, DNS, Kafka, baseline chart, pod kill), tear it down (not part of `make test`)
	./scripts/install-node-deps.sh
	KMT_TEST_NODE=1 $(GO) test -count=1 -v -timeout 60m -run 'TestNode' ./internal/env/testenv/node/

test-node-baseline: ## the node's baseline story only: Kafkas + MirrorMaker 2 + Prometheus in pods, the baseline chart end to end
	./scripts/install-node-deps.sh
	KMT_TEST_NODE=1 $(GO) test -count=1 -v -timeout 30m -run 'TestNodeRunsPods/(pair|prometheus|baseline)$$' ./internal/env/testenv/node/

clean: ## remove build output and reports
	rm -rf bin reports

-include kind/kind.mk
