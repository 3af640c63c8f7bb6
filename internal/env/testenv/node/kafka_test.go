package node

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testKafkaBroker runs a KRaft broker from the Kafka image (DeployKafka),
// then produces and consumes a record through it from this machine over the
// pod bridge.
func testKafkaBroker(t *testing.T, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	importKafkaImage(t, n)
	if err := DeployKafka(ctx, n.Clientset, "default", "smoke"); err != nil {
		t.Fatal(err)
	}
	// The smoke broker's JVM would otherwise share the machine with the
	// parts that follow.
	t.Cleanup(func() {
		if err := n.Clientset.AppsV1().StatefulSets("default").Delete(context.Background(), "smoke-kafka", metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting the smoke broker: %v", err)
		}
	})
	start := time.Now()
	pod, err := n.WaitPodReady(ctx, "default", KafkaPod("smoke"), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ip := pod.Status.PodIP
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
			t.Fatalf("broker at %s never answered: %v\n%s", ip, err, n.podsReport(ctx, "default"))
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
