# kind targets; the top-level Makefile does `include kind/kind.mk`.
#   make kind-up                        two kind clusters with Strimzi, Kafka, MM2, Chaos Mesh, kube-prometheus-stack
#   make kind-run SCENARIO=baseline     build + load the kmt image, helm install the scenario chart in both, print the verdict
#   make kind-down                      delete both clusters
#   make kind-check                     only check the prerequisites (docker, kind, kubectl, helm and their versions)
KIND_DIR ?= $(dir $(lastword $(MAKEFILE_LIST)))
include $(KIND_DIR)versions.env

.PHONY: kind-up kind-down kind-run kind-check kind-versions

kind-check:
	@bash -c 'source $(KIND_DIR)lib.sh && check_all && echo "prerequisites OK"'

kind-up:
	@bash $(KIND_DIR)up.sh

kind-down:
	@bash $(KIND_DIR)down.sh

kind-run:
	@SCENARIO=$(SCENARIO) bash $(KIND_DIR)run.sh

kind-versions:
	@grep -v '^#' $(KIND_DIR)versions.env
