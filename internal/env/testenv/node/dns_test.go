package node

import (
	"context"
	"net"
	"testing"
	"time"
)

// testServicesAndDNS asks the cluster DNS, through its Service's cluster
// IP (kube-proxy's DNAT from this machine to the CoreDNS pod), for the
// kubernetes and kube-dns Services. CoreDNS learns them from the API
// server, which it reaches through the kubernetes Service from its pod, so
// the answers prove both paths: pod to Service to API server, and host to
// Service to pod. A name outside the cluster domain gets no answer: the
// cluster DNS forwards nothing.
func testServicesAndDNS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(DNSServiceIP, "53"))
	}}
	for name, want := range map[string]string{
		"kubernetes.default.svc." + ClusterDomain:   APIServiceIP,
		"kube-dns.kube-system.svc." + ClusterDomain: DNSServiceIP,
	} {
		addrs, err := r.LookupHost(ctx, name)
		if err != nil {
			t.Errorf("looking up %s at %s: %v", name, DNSServiceIP, err)
			continue
		}
		if len(addrs) != 1 || addrs[0] != want {
			t.Errorf("%s = %v, want [%s]", name, addrs, want)
		}
	}
	if addrs, err := r.LookupHost(ctx, "example.com"); err == nil {
		t.Errorf("example.com resolved to %v through the cluster DNS, which must forward nothing", addrs)
	}
}
