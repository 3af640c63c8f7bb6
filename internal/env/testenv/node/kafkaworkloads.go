package node

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// brokerProperties is a single-node KRaft broker+controller. The broker
// advertises its pod IP, which the pod learns from the downward API and
// the broker reads through Kafka's environment config provider: pods and
// this machine reach a pod IP alike (this machine does not use the cluster
// DNS), and a client bootstraps through the Service.
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

// log4j2Properties sends Kafka's INFO log to stdout (the pod's log).
const log4j2Properties = `status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
`

// kafkaConfDir is where a Kafka pod mounts its ConfigMap.
const kafkaConfDir = "/etc/kafka"

// kafkaJava is the java command line for main with args: a small heap, the
// libs on the class path, log4j2 from the pod's ConfigMap, and the
// environment config provider allowed.
func kafkaJava(main string, args ...string) []string {
	return append([]string{
		"-Xms64m", "-Xmx320m", "-XX:+UseG1GC",
		"-Dlog4j2.configurationFile=" + kafkaConfDir + "/log4j2.properties",
		"-Dorg.apache.kafka.automatic.config.providers=org.apache.kafka.common.config.provider.EnvVarConfigProvider",
		"-cp", KafkaLibsInImage + "/*", main,
	}, args...)
}

// KafkaBootstrapService is the Service in front of a Kafka cluster's
// broker, named as the scenario charts' defaults expect
// (<cluster>-kafka-bootstrap; kafka.sourceBootstrap and targetBootstrap).
func KafkaBootstrapService(cluster string) string { return cluster + "-kafka-bootstrap" }

// KafkaPod is the broker pod of a Kafka cluster deployed by DeployKafka.
func KafkaPod(cluster string) string { return cluster + "-kafka-0" }

// kafkaContainer is a container of the Kafka image with the pod's IP in
// POD_IP and the cluster's ConfigMap and data folder mounted.
func kafkaContainer(name string, args []string) corev1.Container {
	return corev1.Container{
		Name: name, Image: KafkaImage, ImagePullPolicy: corev1.PullNever, Args: args,
		Env:          []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: kafkaConfDir}, {Name: "data", MountPath: "/var/lib/kafka"}},
	}
}

// DeployKafka creates a single-broker KRaft Kafka called cluster in ns: a
// plain StatefulSet of the Kafka image (storage formatted by an init
// container with Kafka's storage tool, data in an emptyDir), its
// ConfigMap, and the bootstrap Service. WaitKafka waits for it.
func DeployKafka(ctx context.Context, cs kubernetes.Interface, ns, cluster string) error {
	name := cluster + "-kafka"
	labels := map[string]string{"app.kubernetes.io/name": "kafka", "kmt.dev/kafka-cluster": cluster}
	meta := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	props := kafkaConfDir + "/server.properties"
	broker := kafkaContainer("broker", kafkaJava("kafka.Kafka", props))
	broker.ReadinessProbe = tcpReadiness(9092)
	pod := corev1.PodSpec{
		InitContainers: []corev1.Container{kafkaContainer("format", kafkaJava("kafka.tools.StorageTool", "format", "--cluster-id=MkU3OEVBNTcwNTJENDM2Qg", "-c", props))},
		Containers:     []corev1.Container{broker},
		Volumes:        []corev1.Volume{configMapVolume("config", name), emptyDirVolume("data")},
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: meta,
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: KafkaBootstrapService(cluster),
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template:    podTemplate(meta, pod),
		},
	}
	return createObjects(ctx, cs, "kafka "+cluster,
		&corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"server.properties": brokerProperties, "log4j2.properties": log4j2Properties}},
		service(metav1.ObjectMeta{Name: KafkaBootstrapService(cluster), Namespace: ns, Labels: labels}, labels, tcpPort("kafka", 9092, intstr.FromInt32(9092))),
		sts)
}

// WaitPodReady waits until pod ns/name is Ready and returns it, failing
// early (with its logs) when it ends.
func (n *Node) WaitPodReady(ctx context.Context, ns, name string, timeout time.Duration) (*corev1.Pod, error) {
	var pod *corev1.Pod
	err := waitFor(ctx, timeout, n.daemon("kubelet"), func() error {
		p, err := n.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod = p
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return fmt.Errorf("pod %s/%s ended: %s", ns, name, describe(p))
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("pod %s/%s not ready: %s", ns, name, describe(p))
	})
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, n.podsReport(ctx, ns))
	}
	return pod, nil
}

// MirrorMaker2Name is the MirrorMaker 2 Deployment's name (and container).
const MirrorMaker2Name = "mirrormaker2"

// MirrorMaker2Labels select the MirrorMaker 2 pod (the charts'
// targets.mirror.selector).
var MirrorMaker2Labels = map[string]string{"app.kubernetes.io/name": MirrorMaker2Name}

// DeployMirrorMaker2 runs Apache Kafka's MirrorMaker 2 in dedicated mode
// from the Kafka image as a one-replica Deployment in ns, with properties
// (see mirror.MM2Properties) in its ConfigMap. A killed pod is replaced
// by the Deployment, as a mirror in production would be.
func DeployMirrorMaker2(ctx context.Context, cs kubernetes.Interface, ns, properties string) error {
	meta := metav1.ObjectMeta{Name: MirrorMaker2Name, Namespace: ns, Labels: MirrorMaker2Labels}
	pod := corev1.PodSpec{
		Containers: []corev1.Container{kafkaContainer(MirrorMaker2Name, kafkaJava("org.apache.kafka.connect.mirror.MirrorMaker", kafkaConfDir+"/mm2.properties"))},
		Volumes:    []corev1.Volume{configMapVolume("config", MirrorMaker2Name), emptyDirVolume("data")},
	}
	return createObjects(ctx, cs, "mirrormaker2",
		&corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"mm2.properties": properties, "log4j2.properties": log4j2Properties}},
		deployment(meta, pod))
}
