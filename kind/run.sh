#!/usr/bin/env bash
# make kind-run SCENARIO=<name>: build the kmt image, load it into both kind
# clusters, install the scenario chart into both (role=source, then
# role=target right after: each side's Chaos Mesh Workflow counts from its
# install, so both start within seconds of the load; the fault agents time
# kmt's own faults from the load's real start in the ledger) in namespace $KMT_NAMESPACE (default kmt, opted in to chaos), wait for the
# validator Job in the target and print the verdict from its report
# ConfigMap. Running it again for the same scenario replaces the previous
# run's releases (a fresh run id each time). Exit status: 0 pass, 1
# fail/incomplete, 2 setup error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'echo "kind-run failed at line $LINENO" >&2; exit 2' ERR

SCENARIO="${SCENARIO:-}"
[ -n "$SCENARIO" ] || die "SCENARIO is not set. Usage: make kind-run SCENARIO=<name> (catalogue: ls $REPO_DIR/charts)"
CHART="$REPO_DIR/charts/$SCENARIO"
[ -f "$CHART/Chart.yaml" ] || die "no chart $CHART/Chart.yaml for scenario $SCENARIO. Scenario charts: $(cd "$REPO_DIR/charts" && ls -d */ 2>/dev/null | tr -d / | grep -v '^kmt-lib$' | tr '\n' ' ')"
NS="${KMT_NAMESPACE:-kmt}"
# A fresh run id per run: the chart refuses one that was used before.
RUN="${KMT_RUN:-$(date -u +%Y%m%d-%H%M%S)-$(printf '%04x%04x' "$RANDOM" "$RANDOM")}"
RELEASE="kmt-$SCENARIO"

check_all
for c in "${CLUSTERS[@]}"; do check_cluster "$c"; done
[ -f "$REPO_DIR/Dockerfile" ] || die "no Dockerfile at $REPO_DIR/Dockerfile to build the kmt image from."

log "building $KMT_IMAGE"
docker build -t "$KMT_IMAGE" "$REPO_DIR"
for c in "${CLUSTERS[@]}"; do
  log "loading $KMT_IMAGE into kmt-$c"
  kind load docker-image "$KMT_IMAGE" --name "kmt-$c"
done

# The far side of the WAN as each cluster's pods see it, read from kind's
# docker network (its IPv4 subnet comes from Docker's pools: never assume
# it). The mirror (target) reaches the source brokers on the source node's
# address; the source brokers see the mirror's connections coming from the
# target node's address (kind/manifests/kafka.yaml keeps client addresses
# with externalTrafficPolicy: Local).
SOURCE_IP="$(node_ip source)"
TARGET_IP="$(node_ip target)"
SOURCE_BOOTSTRAP="$SOURCE_IP:32100"
TARGET_BOOTSTRAP="target-kafka-bootstrap.kafka.svc:9092"

for c in source target; do
  cx="$(ctx "$c")"
  ensure_namespace "$cx" "$NS"
  # The opt-in: kmt creates chaos only in namespaces labelled like this.
  kubectl --context "$cx" label namespace "$NS" kmt.dev/chaos=allowed --overwrite >/dev/null
  kubectl --context "$cx" label namespace kafka kmt.dev/chaos=allowed --overwrite >/dev/null
  if [ "$c" = source ]; then
    src_boot="source-kafka-bootstrap.kafka.svc:9092"
    peer="$TARGET_IP/32"
  else
    src_boot="$SOURCE_BOOTSTRAP"
    peer="$SOURCE_IP/32"
  fi
  # A run's Job and Workflow cannot be upgraded into the next run's (a Job's
  # pod template is immutable; a finished Workflow never runs again): the
  # previous run of this scenario is uninstalled, then the chart installed.
  log "[$c] removing the previous run of $SCENARIO (helm uninstall $RELEASE, if any)"
  helm --kube-context "$cx" uninstall "$RELEASE" --namespace "$NS" --ignore-not-found --wait >/dev/null
  log "[$c] helm install $RELEASE (role=$c, run=$RUN, WAN peer $peer)"
  helm --kube-context "$cx" install "$RELEASE" "$CHART" --namespace "$NS" \
    --set role="$c" --set cluster="$c" --set run="$RUN" \
    --set image.repository="${KMT_IMAGE%%:*}" --set image.tag="${KMT_IMAGE##*:}" --set image.pullPolicy=Never \
    --set kafka.sourceBootstrap="$src_boot" --set kafka.targetBootstrap="$TARGET_BOOTSTRAP" \
    --set "chaos.peerAddresses={$peer}"
done

cx="$(ctx target)"
job="$RELEASE-validator"
deadline="$(kubectl --context "$cx" -n "$NS" get "job/$job" -o jsonpath='{.spec.activeDeadlineSeconds}')"
[ -n "$deadline" ] || die "no validator Job $job in namespace $NS of kmt-target ('kubectl --context $cx -n $NS get jobs')."
timeout="${KMT_TIMEOUT_SECONDS:-$((deadline + 300))}"
log "waiting up to ${timeout}s for job/$job (follow it: kubectl --context $cx -n $NS logs -f job/$job)"
state="$(wait_job "$cx" "$NS" "$job" "$timeout" || true)"
log "validator Job: $state"

# The report ConfigMap is the one of this run that holds report.json.
cm=""
for c in $(kubectl --context "$cx" -n "$NS" get configmaps -l "kmt.dev/run=$RUN" -o name); do
  if [ -n "$(kubectl --context "$cx" -n "$NS" get "$c" -o jsonpath='{.data.report\.json}' 2>/dev/null | head -c 1)" ]; then
    cm="$c"
    break
  fi
done
[ -n "$cm" ] || die "the validator wrote no report ConfigMap with report.json for run $RUN (logs: kubectl --context $cx -n $NS logs job/$job)."
report="$(kubectl --context "$cx" -n "$NS" get "$cm" -o jsonpath='{.data.report\.json}')"
verdict="$(printf '%s' "$report" | sed -n 's/.*"verdict": *"\([a-z]*\)".*/\1/p' | head -n1)"
printf '%s\n' "$report" > "kmt-report-$SCENARIO-$RUN.json"
log "report saved to kmt-report-$SCENARIO-$RUN.json (from $cm)"
kubectl --context "$cx" -n "$NS" get "$cm" -o jsonpath='{.data.summary\.txt}' 2>/dev/null || true
echo "verdict: ${verdict:-unknown}"
log "clean up this run: kmt abort --run-id $RUN --source-context $(ctx source) --target-context $(ctx target) (or helm uninstall $RELEASE -n $NS in both)"
[ "$verdict" = pass ]
