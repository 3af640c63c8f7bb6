package node

import (
	"fmt"
	"os"
	"path/filepath"
)

// layout is where one node keeps everything: every path is under root, so
// a crashed harness's leftovers are found by root alone (see Sweep).
type layout struct{ root string }

func (l layout) path(p ...string) string { return filepath.Join(append([]string{l.root}, p...)...) }

func (l layout) logs() string             { return l.path("logs") }
func (l layout) containerdConfig() string { return l.path("containerd", "config.toml") }
func (l layout) containerdSocket() string { return l.path("containerd", "containerd.sock") }
func (l layout) runcRoot() string         { return l.path("containerd", "runc") }
func (l layout) cniConfDir() string       { return l.path("cni", "net.d") }
func (l layout) kubeletDir() string       { return l.path("kubelet") }
func (l layout) kubeletConfig() string    { return l.path("kubelet.yaml") }
func (l layout) kubeconfig() string       { return l.path("kubeconfig") }
func (l layout) caFile() string           { return l.path("ca.crt") }
func (l layout) imagesDir() string        { return l.path("images") }

// runcNamespaceRoot is the runc state folder of containerd's k8s.io
// namespace (the runc v2 shim puts each namespace's containers in Root/<ns>).
func (l layout) runcNamespaceRoot() string { return filepath.Join(l.runcRoot(), "k8s.io") }

// containerdTOML is containerd 1.6's config: every folder and socket under
// the node's root, the CRI plugin on our pause image and CNI folder, and the
// two settings this machine needs (restrict_oom_score_adj: root here lacks
// CAP_SYS_RESOURCE, so the sandbox's oom_score_adj -998 is refused;
// netns_mounts_under_state_dir: pod network namespaces are mounted under our
// state folder, not /var/run/netns, so teardown finds them by path).
func containerdTOML(l layout, cniBinDir string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
temp = %q

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %q
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %q
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_tls_streaming = false
    disable_apparmor = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = %q
      conf_dir = %q
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = %q
`, l.path("containerd", "root"), l.path("containerd", "state"), l.path("containerd", "tmp"),
		l.containerdSocket(), l.path("containerd", "ttrpc.sock"),
		l.path("containerd", "opt"),
		PauseImage, cniBinDir, l.cniConfDir(), l.runcRoot())
}

// Pod network: one bridge in the host's network namespace, created by the
// node (createBridge) with BridgeIP, each pod in its own namespace (created
// by containerd) on a veth into it, addresses from a private /24. The pods
// get no default route, only the /24 itself and ServiceCIDR through the
// bridge, so they reach each other, the host's bridge address and Services
// and nothing else: no traffic can leave the machine. (The bridge plugin turns IPv4 forwarding on for a gateway bridge;
// the node puts the machine's setting back at Stop.) containerd's CRI brings
// each pod's loopback up itself. Host-network pods would be simpler, but the
// charts bind the same ports in several pods (two Kafka clusters), which
// needs one address per pod.
//
// BridgeIP is also the node's address: the kubelet refuses a loopback node
// IP ("nodeIP can't be loopback address"), and the API server reaches the
// kubelet (logs, exec) at the node's InternalIP, so the kubelet serves on
// the bridge address, which only this machine and its pods can reach.
const (
	BridgeName = "kmtbr0"
	PodSubnet  = "10.213.0.0/24"
	BridgeIP   = "10.213.0.1"
	bridgeCIDR = BridgeIP + "/24"
)

// Services: cluster IPs come from ServiceCIDR (the API server's
// service-cluster-ip-range), the kubernetes Service is its first address
// and the cluster DNS has a fixed one. kube-proxy turns a cluster IP into
// an endpoint with iptables DNAT on the host, so the pods route ServiceCIDR
// through the bridge (the CNI config), and the host routes it onto the
// bridge too: an address no Service holds goes nowhere, never out of the
// machine.
const (
	ServiceCIDR  = "10.213.1.0/24"
	APIServiceIP = "10.213.1.1"
	DNSServiceIP = "10.213.1.10"
)

func cniConflist(l layout) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "kmt-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": %q}]
      }
    }
  ]
}
`, BridgeName, l.path("cni", "ipam"), PodSubnet, BridgeIP, ServiceCIDR)
}

// kubeletYAML is the kubelet's configuration for this machine (see
// DESIGN.md "A Kubernetes node on this machine"): cgroup v1 controllers plus
// a cgroup2 tree need failCgroupV1: false and the cgroupfs driver; without
// QoS cgroups and node-allocatable enforcement it needs no cgroup setup; it
// serves only on the bridge address and lets the API server in without credentials
// (logs, exec); image garbage collection is off because every image was
// imported and none can be pulled back; it makes no iptables chains of its
// own (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT would outlive
// the node: kube-proxy --cleanup removes only kube-proxy's; seen left behind
// by the first run with Leftovers checking iptables).
func kubeletYAML(l layout, port, healthzPort int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: `+BridgeIP+`
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failCgroupV1: false
failSwapOn: false
podLogsDir: %s
resolvConf: ""
clusterDNS: [`+DNSServiceIP+`]
clusterDomain: `+ClusterDomain+`
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
serializeImagePulls: false
makeIPTablesUtilChains: false
`, port, healthzPort, l.containerdSocket(), l.path("pod-logs"))
}

func writeFiles(files map[string]string) error {
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	return nil
}
