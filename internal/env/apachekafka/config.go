package apachekafka

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
)

// node is one combined broker+controller: its id, ports and data folder
// survive kills and restarts (a restarted node comes back on the same
// listeners with the same log).
type node struct {
	id         int32
	client     string // 127.0.0.1:port, the CLIENT listener (kmt's own clients dial it)
	internal   string // INTERNAL listener: replication between brokers
	controller string // CONTROLLER listener: the KRaft quorum
	advertised string // what CLIENT advertises: the WAN front on the source
	dir        string // this node's folder: server.properties, data/
}

// freePorts reserves n distinct loopback ports by listening on :0, then
// releases them all at once (holding each until the end keeps the kernel
// from handing the same port out twice).
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a loopback port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// voters is the static quorum: every node is a controller.
func voters(nodes []*node) string {
	var v []string
	for _, n := range nodes {
		v = append(v, fmt.Sprintf("%d@%s", n.id, n.controller))
	}
	return strings.Join(v, ",")
}

// serverProperties renders one node's server.properties. Every setting that
// differs from Kafka's defaults says why.
func serverProperties(n *node, nodes []*node, extra map[string]string) string {
	rf := min(3, len(nodes))
	minISR := min(2, rf)
	p := map[string]string{
		"process.roles":            "broker,controller",
		"node.id":                  strconv.Itoa(int(n.id)),
		"controller.quorum.voters": voters(nodes),
		// Three listeners: a client gets metadata for the listener it came
		// in on, so advertising the WAN front on CLIENT alone keeps
		// replication and the quorum off the WAN.
		"listeners":                      "CLIENT://" + n.client + ",INTERNAL://" + n.internal + ",CONTROLLER://" + n.controller,
		"advertised.listeners":           "CLIENT://" + n.advertised + ",INTERNAL://" + n.internal,
		"listener.security.protocol.map": "CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name":     "INTERNAL",
		"controller.listener.names":      "CONTROLLER",
		"log.dirs":                       n.dir + "/data",
		// Small clusters: every internal topic's replication factor must fit
		// the broker count, or the topic is never created.
		"default.replication.factor":                       strconv.Itoa(rf),
		"offsets.topic.replication.factor":                 strconv.Itoa(rf),
		"transaction.state.log.replication.factor":         strconv.Itoa(rf),
		"transaction.state.log.min.isr":                    strconv.Itoa(minISR),
		"share.coordinator.state.topic.replication.factor": strconv.Itoa(rf),
		"share.coordinator.state.topic.min.isr":            strconv.Itoa(minISR),
		// Fewer internal partitions: creating 50 offsets partitions on a
		// loaded 2-core machine takes seconds nobody needs.
		"offsets.topic.num.partitions":         "10",
		"transaction.state.log.num.partitions": "10",
		// The cleaner's dedupe buffer is 128 MiB of heap by default; six
		// brokers on a shared machine cannot afford that.
		"log.cleaner.dedupe.buffer.size": "8388608",
		"log.cleaner.threads":            "1",
		// The cleaner looks for work every 2 s instead of 15 s, so a
		// compacted topic with small segments is cleaned within a short run.
		"log.cleaner.backoff.ms":            "2000",
		"num.network.threads":               "2",
		"num.io.threads":                    "4",
		"num.recovery.threads.per.data.dir": "1",
		// As Kafka's shipped server.properties: no 3 s wait before the
		// first consumer group rebalance.
		"group.initial.rebalance.delay.ms": "0",
	}
	for k, v := range extra {
		p[k] = v
	}
	var b strings.Builder
	b.WriteString("# written by kmt (internal/env/apachekafka)\n")
	for _, k := range slices.Sorted(maps.Keys(p)) {
		fmt.Fprintf(&b, "%s=%s\n", k, p[k])
	}
	return b.String()
}
