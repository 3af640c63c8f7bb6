#!/usr/bin/env bash
# make kind-run SCENARIO=<name>: build the kmt image, load it into both kind
# clusters, install the scenario chart into both (role=source / role=target)
# in namespace $KMT_NAMESPACE (default kmt, opted in to chaos), wait for the
# validator Job in the target and print the verdict from its report
# ConfigMap. Exit status: 0 pass, 1 fail/incomplete, 2 setup error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'echo "kind-run failed at line $LINENO" >&2; exit 2' ERR

SCENARIO="${SCENARIO:-}"
[ -n "$SCENARIO" ] || die "SCENARIO is not set. Usage: make kind-run SCENARIO=<name> (catalogue: ls $REPO_DIR/charts)"
CHART="$REPO_DIR/charts/$SCENARIO"
[ -f "$CHART/Chart.yaml" ] || die "no chart $CHART/Chart.yaml for scenario $SCENARIO. Scenario charts: $(cd "$REPO_DIR/charts" && ls -d */ 2>/dev/null | tr -d / | grep -v '^kmt-lib$' | tr '\n' ' ')"
NS="${KMT_NAMESPACE:-kmt}"
RUN="${KMT_RUN:-$(date -u +%Y%m%d-%H%M%S)}"
RELEASE="kmt-$SCENARIO"
TIMEOUT="${KMT_TIMEOUT:-30m}"

check_all
for c in "${CLUSTERS[@]}"; do check_cluster "$c"; done
[ -f "$REPO_DIR/Dockerfile" ] || die "no Dockerfile at $REPO_DIR/Dockerfile to build the kmt image from."

log "building $KMT_IMAGE"
docker build -t "$KMT_IMAGE" "$REPO_DIR"
for c in "${CLUSTERS[@]}"; do
  log "loading $KMT_IMAGE into kmt-$c"
  kind load docker-image "$KMT_IMAGE" --name "kmt-$c"
done

log "resolving the chart's library dependency"
helm dependency build "$CHART" >/dev/null

SOURCE_BOOTSTRAP="$(node_ip source):32100"
TARGET_BOOTSTRAP="target-kafka-bootstrap.kafka.svc:9092"
for c in "${CLUSTERS[@]}"; do
  k=(kubectl --context "$(ctx "$c")")
  "${k[@]}" create namespace "$NS" --dry-run=client -o yaml | "${k[@]}" apply -f -
  # The opt-in: kmt creates chaos only in namespaces labelled like this.
  "${k[@]}" label namespace "$NS" kmt.dev/chaos=allowed --overwrite
  "${k[@]}" label namespace kafka kmt.dev/chaos=allowed --overwrite
  log "[$c] helm install $RELEASE (role=$c, run=$RUN)"
  helm --kube-context "$(ctx "$c")" upgrade --install "$RELEASE" "$CHART" --namespace "$NS" \
    --set role="$c" --set cluster="$c" --set run="$RUN" --set scenario="$SCENARIO" \
    --set image.repository="${KMT_IMAGE%%:*}" --set image.tag="${KMT_IMAGE##*:}" --set image.pullPolicy=Never \
    --set kafka.sourceBootstrap="$( [ "$c" = source ] && echo "source-kafka-bootstrap.kafka.svc:9092" || echo "$SOURCE_BOOTSTRAP")" \
    --set kafka.targetBootstrap="$TARGET_BOOTSTRAP" \
    --set prometheus.url="http://kps-kube-prometheus-stack-prometheus.monitoring.svc:9090"
done

kt=(kubectl --context "$(ctx target)" -n "$NS")
job="$("${kt[@]}" get jobs -l "kmt.dev/run=$RUN" -o name | grep validator | head -n1 || true)"
[ -n "$job" ] || die "no validator Job labelled kmt.dev/run=$RUN in namespace $NS of kmt-target ('kubectl --context $(ctx target) -n $NS get jobs')."
log "waiting up to $TIMEOUT for $job (follow it: kubectl --context $(ctx target) -n $NS logs -f $job)"
set +e
"${kt[@]}" wait "$job" --for=condition=Complete --timeout "$TIMEOUT" &
wc=$!
"${kt[@]}" wait "$job" --for=condition=Failed --timeout "$TIMEOUT" &
wf=$!
wait -n "$wc" "$wf"
kill "$wc" "$wf" 2>/dev/null
set -e

cm="$("${kt[@]}" get configmaps -l "kmt.dev/run=$RUN" -o name | while read -r c; do
  "${kt[@]}" get "$c" -o jsonpath='{.data.report\.json}' | grep -q . && echo "$c"; done | head -n1)"
[ -n "$cm" ] || die "the validator wrote no report ConfigMap with report.json (logs: kubectl --context $(ctx target) -n $NS logs $job)."
report="$("${kt[@]}" get "$cm" -o jsonpath='{.data.report\.json}')"
verdict="$(printf '%s' "$report" | sed -n 's/.*"verdict": *"\([a-z]*\)".*/\1/p' | head -n1)"
echo "$report" > "kmt-report-$SCENARIO-$RUN.json"
log "report saved to kmt-report-$SCENARIO-$RUN.json (from $cm)"
echo "verdict: ${verdict:-unknown}"
log "clean up this run: kmt abort --run-id $RUN --source-context $(ctx source) --target-context $(ctx target) (or helm uninstall $RELEASE -n $NS in both)"
[ "$verdict" = pass ]
