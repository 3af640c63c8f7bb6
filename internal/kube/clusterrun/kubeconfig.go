package clusterrun

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Side is one cluster kmt drives: a role, where to reach it and the
// namespace the scenario chart goes into.
type Side struct {
	Role Role
	// Context is the kube context name (shown in plans and errors).
	Context   string
	Namespace string
	Config    *rest.Config
}

// Name is how the side is shown: "source (kind-kmt-source)".
func (s Side) Name() string {
	if s.Context == "" {
		return string(s.Role)
	}
	return fmt.Sprintf("%s (context %s)", s.Role, s.Context)
}

// LoadSide reads a kubeconfig (kubeconfig "" means the usual $KUBECONFIG /
// ~/.kube/config rules, as kubectl does) and returns the side for one
// context. An unknown context is an error that lists the known ones.
func LoadSide(kubeconfig, context, namespace string, role Role) (Side, error) {
	if role != RoleSource && role != RoleTarget {
		return Side{}, fmt.Errorf("role %q: must be %q or %q", role, RoleSource, RoleTarget)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	raw, err := cc.RawConfig()
	if err != nil {
		return Side{}, fmt.Errorf("%s cluster: read kubeconfig %s: %w", role, describeKubeconfig(kubeconfig), err)
	}
	if context == "" {
		context = raw.CurrentContext
	}
	if _, ok := raw.Contexts[context]; !ok || context == "" {
		return Side{}, fmt.Errorf("%s cluster: kube context %q not found in %s (known contexts: %s); pass one with --%s-context, `kubectl config get-contexts` lists them",
			role, context, describeKubeconfig(kubeconfig), knownContexts(raw), role)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return Side{}, fmt.Errorf("%s cluster: kube context %q: %w", role, context, err)
	}
	if namespace == "" {
		namespace, _, err = cc.Namespace()
		if err != nil || namespace == "" {
			namespace = "default"
		}
	}
	return Side{Role: role, Context: context, Namespace: namespace, Config: cfg}, nil
}

func describeKubeconfig(path string) string {
	if path == "" {
		return "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
	}
	return path
}

func knownContexts(raw clientcmdapi.Config) string {
	var names []string
	for n := range raw.Contexts {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// restGetter is a genericclioptions.RESTClientGetter built from a
// *rest.Config, which is what the Helm SDK wants; kubectl's own
// implementation insists on reading a kubeconfig file.
type restGetter struct {
	cfg       *rest.Config
	namespace string
	disc      discovery.CachedDiscoveryInterface
}

var _ genericclioptions.RESTClientGetter = (*restGetter)(nil)

func newRESTGetter(cfg *rest.Config, namespace string) (*restGetter, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("discovery client for %s: %w", cfg.Host, err)
	}
	return &restGetter{cfg: cfg, namespace: namespace, disc: memory.NewMemCacheClient(dc)}, nil
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.disc, nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) {
	m := restmapper.NewDeferredDiscoveryRESTMapper(g.disc)
	return restmapper.NewShortcutExpander(m, g.disc, nil), nil
}

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return fixedClientConfig{g}
}

// fixedClientConfig answers kubectl's kubeconfig questions from the
// rest.Config: Helm asks it only for the default namespace.
type fixedClientConfig struct{ g *restGetter }

func (c fixedClientConfig) RawConfig() (clientcmdapi.Config, error) {
	return clientcmdapi.Config{}, nil
}
func (c fixedClientConfig) ClientConfig() (*rest.Config, error) { return rest.CopyConfig(c.g.cfg), nil }
func (c fixedClientConfig) Namespace() (string, bool, error)    { return c.g.namespace, true, nil }
func (c fixedClientConfig) ConfigAccess() clientcmd.ConfigAccess {
	return clientcmd.NewDefaultClientConfigLoadingRules()
}
