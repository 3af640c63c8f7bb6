package node

import (
	"fmt"
	"os/exec"
	"path/filepath"
)

// startKubeProxy starts kube-proxy in iptables mode, so pods reach
// Services (the API server through the kubernetes Service, the cluster
// DNS, the charts' Services) by their cluster IPs. Settings for this
// machine:
//   - masquerade-all: a pod that reaches a Service whose endpoint is on the
//     same bridge gets the answer back through the host (else the endpoint
//     answers it directly, from an address it never dialled);
//   - nodeport-addresses on the bridge address only, so no NodePort opens
//     on the machine's other interfaces;
//   - conntrack settings 0: kube-proxy leaves the machine's sysctls alone;
//   - health and metrics on loopback, on free ports.
func (n *Node) startKubeProxy(bins string) error {
	healthz, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	metrics, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	_, err = n.startDaemon("kube-proxy", filepath.Join(bins, "kube-proxy"),
		"--kubeconfig="+n.KubeconfigPath,
		"--hostname-override="+NodeName,
		"--proxy-mode=iptables",
		"--cluster-cidr="+PodSubnet,
		"--masquerade-all",
		"--nodeport-addresses="+BridgeIP+"/32",
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		fmt.Sprintf("--healthz-bind-address=127.0.0.1:%d", healthz),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metrics),
		"--v=1",
	)
	return err
}

// cleanupKubeProxy removes every iptables chain and rule kube-proxy made
// (`kube-proxy --cleanup`), for both address families.
func cleanupKubeProxy(bins string) error {
	bin := filepath.Join(bins, "kube-proxy")
	out, err := exec.Command(bin, "--cleanup").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --cleanup: %w: %s", bin, err, out)
	}
	return nil
}
