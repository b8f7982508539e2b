package broker

import "github.com/twmb/franz-go/pkg/kfake"

// Cluster returns the underlying kfake cluster, for tests that inject
// protocol faults (kfake's ControlKey) into a running broker. Production code
// has no use for it.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }
