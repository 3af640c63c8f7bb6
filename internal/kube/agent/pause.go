package agent

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// Pauser freezes and thaws the processes of pods' containers through pod
// exec: `kill -STOP -1` signals every process of the container's PID
// namespace except its init (tini in Strimzi's images, whose child is the
// JVM) and the signalling shell itself. RBAC: pods get/list and
// pods/exec create in the target namespace only.
type Pauser struct {
	cs  kubernetes.Interface
	cfg *rest.Config
}

// NewPauser uses cfg (the pod's service account in-cluster).
func NewPauser(cfg *rest.Config) (*Pauser, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Pauser{cs: cs, cfg: cfg}, nil
}

// PodRef is one paused container.
type PodRef struct {
	Namespace, Name, Container string
	Restarts                   int32
}

func (r PodRef) String() string { return r.Namespace + "/" + r.Name + "/" + r.Container }

// Select lists the running pods matching selector in ns; with names, only
// those; with n > 0, the first n by name. container "" means each pod's
// first container.
func (p *Pauser) Select(ctx context.Context, ns string, selector map[string]string, names []string, n int, container string) ([]PodRef, error) {
	list, err := p.cs.CoreV1().Pods(ns).List(ctx, metav1ListOptions(selector))
	if err != nil {
		return nil, fmt.Errorf("listing pods %s in namespace %s: %w", labels.SelectorFromSet(selector), ns, err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []PodRef
	for _, pod := range list.Items {
		if pod.Status.Phase != corev1.PodRunning || (len(names) > 0 && !want[pod.Name]) {
			continue
		}
		c := container
		if c == "" && len(pod.Spec.Containers) > 0 {
			c = pod.Spec.Containers[0].Name
		}
		out = append(out, PodRef{Namespace: ns, Name: pod.Name, Container: c, Restarts: restarts(&pod, c)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no running pod matches %s in namespace %s%s: nothing to pause (check the chart's targets values)", labels.SelectorFromSet(selector), ns, namesNote(names))
	}
	return out, nil
}

func namesNote(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " named " + strings.Join(names, ", ")
}

func restarts(pod *corev1.Pod, container string) int32 {
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == container {
			return s.RestartCount
		}
	}
	return 0
}

// Signal sends sig (STOP or CONT) to every process of the container but
// its init.
func (p *Pauser) Signal(ctx context.Context, r PodRef, sig string) error {
	return p.exec(ctx, r, "kill -"+sig+" -1")
}

// Freeze stops every process of r's container (as Signal "STOP") and leaves
// a sleeper in the container that sends SIGCONT after healAfter: the pause
// ends by itself even if the agent dies, is evicted or is uninstalled
// before it resumes the pod. The agent's own SIGCONT at the window's end
// normally comes first; a second SIGCONT is harmless.
func (p *Pauser) Freeze(ctx context.Context, r PodRef, healAfter time.Duration) error {
	return p.exec(ctx, r, freezeCommand(healAfter))
}

// freezeCommand: the sleeper is forked after the SIGSTOP, so it is not
// frozen itself, and detached from the exec session's streams so the
// session can end.
func freezeCommand(healAfter time.Duration) string {
	secs := int64((healAfter + time.Second - 1) / time.Second)
	return fmt.Sprintf("kill -STOP -1; (sleep %d; kill -CONT -1) </dev/null >/dev/null 2>&1 &", max(secs, 1))
}

func (p *Pauser) exec(ctx context.Context, r PodRef, script string) error {
	req := p.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(r.Namespace).Name(r.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: r.Container, Command: []string{"/bin/sh", "-c", script}, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(p.cfg, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("exec into %s: %w", r, err)
	}
	var out bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &out}); err != nil {
		return fmt.Errorf("%q in %s: %w %s", script, r, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// RestartedSince reports whether r's container restarted since it was
// selected (a liveness probe failing while paused turns a pause into a
// restart: the report must say so).
func (p *Pauser) RestartedSince(ctx context.Context, r PodRef) (bool, error) {
	pod, err := p.cs.CoreV1().Pods(r.Namespace).Get(ctx, r.Name, metav1GetOptions())
	if err != nil {
		return false, err
	}
	return restarts(pod, r.Container) > r.Restarts, nil
}

// brokerPodNames are the pod names of node ids.
func brokerPodNames(prefix string, nodes []int32) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, prefix+strconv.Itoa(int(n)))
	}
	return out
}
