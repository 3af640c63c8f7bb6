package agent

import "sigs.k8s.io/controller-runtime/pkg/client"

type clientIface = client.Client
