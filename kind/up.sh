#!/usr/bin/env bash
# make kind-up: two kind clusters (source, target), each with Strimzi and a
# KRaft Kafka cluster, Chaos Mesh and kube-prometheus-stack; MirrorMaker 2 in
# the target, reading the source through its NodePort listener. Idempotent:
# re-running skips what exists and upgrades the Helm releases in place.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOPICS="${KMT_TOPICS:-orders|kmt-.*}"
case "$TOPICS" in
  *"'"*) die "KMT_TOPICS=$TOPICS holds a single quote; give a Java regex of topic names without one." ;;
esac

check_all

for c in "${CLUSTERS[@]}"; do
  if kind get clusters 2>/dev/null | grep -qx "kmt-$c"; then
    log "kind cluster kmt-$c exists"
  else
    log "creating kind cluster kmt-$c ($KIND_NODE_IMAGE)"
    kind create cluster --config "$KIND_DIR/$c.yaml" --image "$KIND_NODE_IMAGE" --wait 120s
  fi
done

log "helm repositories (pinned chart versions from kind/versions.env; Strimzi from its OCI registry)"
helm repo add chaos-mesh "$CHAOS_MESH_CHART_REPO" --force-update >/dev/null
helm repo add prometheus-community "$KPS_CHART_REPO" --force-update >/dev/null
helm repo update chaos-mesh prometheus-community >/dev/null

for c in "${CLUSTERS[@]}"; do
  cx="$(ctx "$c")"
  h=(helm --kube-context "$cx")
  # Namespaces first: the Strimzi chart puts RoleBindings into every watched
  # namespace, and the Kafka CRs land in kafka.
  for ns in monitoring chaos-mesh strimzi kafka; do
    ensure_namespace "$cx" "$ns"
  done
  log "[$c] kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION (release $KPS_RELEASE)"
  "${h[@]}" upgrade --install "$KPS_RELEASE" prometheus-community/kube-prometheus-stack --version "$KUBE_PROMETHEUS_STACK_VERSION" \
    --namespace monitoring -f "$KIND_DIR/values/kube-prometheus-stack.yaml" --wait --timeout 10m
  log "[$c] Chaos Mesh $CHAOS_MESH_VERSION (containerd)"
  "${h[@]}" upgrade --install chaos-mesh chaos-mesh/chaos-mesh --version "$CHAOS_MESH_VERSION" \
    --namespace chaos-mesh -f "$KIND_DIR/values/chaos-mesh.yaml" --wait --timeout 10m
  log "[$c] Strimzi $STRIMZI_VERSION watching namespace kafka"
  "${h[@]}" upgrade --install strimzi "$STRIMZI_CHART" --version "$STRIMZI_VERSION" \
    --namespace strimzi --set 'watchNamespaces={kafka}' --wait --timeout 10m
  ip="$(node_ip "$c")"
  log "[$c] Kafka $KAFKA_VERSION (KRaft, 3 nodes), external NodePort listener advertised on $ip"
  render "$KIND_DIR/manifests/kafka.yaml" CLUSTER="$c" ADVERTISED_HOST="$ip" KAFKA_VERSION="$KAFKA_VERSION" | kubectl --context "$cx" apply -f -
  kubectl --context "$cx" apply -f "$KIND_DIR/manifests/podmonitors.yaml"
done

for c in "${CLUSTERS[@]}"; do
  log "[$c] waiting for Kafka to be Ready (first start pulls images: minutes)"
  kubectl --context "$(ctx "$c")" -n kafka wait "kafka/$c" --for=condition=Ready --timeout 15m
done

SOURCE_BOOTSTRAP="$(node_ip source):32100"
log "[target] MirrorMaker 2 from $SOURCE_BOOTSTRAP, topics matching $TOPICS"
render "$KIND_DIR/manifests/mirrormaker2.yaml" SOURCE_BOOTSTRAP="$SOURCE_BOOTSTRAP" KAFKA_VERSION="$KAFKA_VERSION" TOPICS="$TOPICS" |
  kubectl --context "$(ctx target)" apply -f -
kubectl --context "$(ctx target)" -n kafka wait kafkamirrormaker2/mirror --for=condition=Ready --timeout 10m

log "both clusters are up. Source bootstrap from the target: $SOURCE_BOOTSTRAP. Next: make kind-run SCENARIO=baseline"
