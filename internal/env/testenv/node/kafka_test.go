package node

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
)

// brokerProperties is a single-node KRaft broker+controller. The broker
// advertises its pod IP, which the pod learns from the downward API; the
// broker reads it through Kafka's environment config provider.
const brokerProperties = `process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://localhost:9093
advertised.listeners=PLAINTEXT://${env:POD_IP}:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=/var/lib/kafka/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
`

// kafkaJava is the java command line for main with args: a small heap,
// the libs on the class path, and the environment config provider allowed.
func kafkaJava(main string, args ...string) []string {
	return append([]string{
		"-Xms64m", "-Xmx320m", "-XX:+UseG1GC",
		"-Dorg.apache.kafka.automatic.config.providers=org.apache.kafka.common.config.provider.EnvVarConfigProvider",
		"-cp", KafkaLibsInImage + "/*", main,
	}, args...)
}

// testKafkaBroker runs a KRaft broker from the Kafka image in one pod (its
// storage formatted by an init container with Kafka's storage tool), then
// produces and consumes a record through it from this machine over the pod
// bridge.
func testKafkaBroker(t *testing.T, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dist, err := kafkadist.Ensure(ctx, kafkadist.Version, nil)
	if err != nil {
		t.Fatalf("Kafka libs: %v", err)
	}
	spec, err := KafkaImageSpec(DebianJRE, dist.Libs)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ImportImage(ctx, spec); err != nil {
		t.Fatal(err)
	}
	cs := n.Clientset
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kafka", Namespace: "default"}, Data: map[string]string{"server.properties": brokerProperties}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	props := "/etc/kafka/server.properties"
	container := func(name string, args []string) corev1.Container {
		return corev1.Container{
			Name: name, Image: KafkaImage, ImagePullPolicy: corev1.PullNever, Args: args,
			Env:          []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/kafka"}, {Name: "data", MountPath: "/var/lib/kafka"}},
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kafka-0", Namespace: "default"},
		Spec: corev1.PodSpec{
			RestartPolicy:  corev1.RestartPolicyNever,
			InitContainers: []corev1.Container{container("format", kafkaJava("kafka.tools.StorageTool", "format", "--cluster-id=MkU3OEVBNTcwNTJENDM2Qg", "-c", props))},
			Containers:     []corev1.Container{container("broker", kafkaJava("kafka.Kafka", props))},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "kafka"}}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var ip string
	for ip == "" {
		got, err := cs.CoreV1().Pods("default").Get(ctx, "kafka-0", metav1.GetOptions{})
		if err == nil && got.Status.Phase == corev1.PodRunning {
			ip = got.Status.PodIP
		} else if err == nil && got.Status.Phase == corev1.PodFailed {
			t.Fatalf("kafka-0 failed: %s\n%s", describe(got), podLogs(ctx, n, "kafka-0"))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kafka-0 not running: %v (%s)", ctx.Err(), describe(got))
		case <-time.After(500 * time.Millisecond):
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(net.JoinHostPort(ip, "9092")), kgo.ConsumeTopics("node-smoke"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var brokers kadm.BrokerDetails
	for {
		if brokers, err = adm.ListBrokers(ctx); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("broker at %s never answered: %v\n%s", ip, err, podLogs(ctx, n, "kafka-0"))
		case <-time.After(time.Second):
		}
	}
	if len(brokers) != 1 || brokers[0].Host != ip || brokers[0].Port != 9092 {
		t.Errorf("brokers = %+v, want one advertising %s:9092 (the pod IP through the env config provider)", brokers, ip)
	}
	t.Logf("broker answered at %s %s after pod creation", ip, time.Since(start).Round(time.Millisecond))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "node-smoke"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "node-smoke", Value: []byte("hello from the node")}).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	fetches := cl.PollRecords(ctx, 1)
	if errs := fetches.Errors(); len(errs) > 0 {
		t.Fatalf("consuming: %v", errs)
	}
	recs := fetches.Records()
	if len(recs) != 1 || string(recs[0].Value) != "hello from the node" {
		t.Errorf("consumed %d records (%v), want the one produced", len(recs), recs)
	}
}

func podLogs(ctx context.Context, n *Node, name string) string {
	var b strings.Builder
	for _, c := range []string{"format", "broker"} {
		out, err := n.Clientset.CoreV1().Pods("default").GetLogs(name, &corev1.PodLogOptions{Container: c}).DoRaw(ctx)
		fmt.Fprintf(&b, "--- %s (%v)\n%s\n", c, err, tail(string(out), 3000))
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
