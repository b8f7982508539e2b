package analytics

import (
	"context"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/warehouse"
)

// migratedCluster starts a cluster of 2 shards of one replica, migrates
// its database costpipe ON CLUSTER, and returns a context of 3 minutes,
// the warehouse of the Distributed tables and the shards' own.
func migratedCluster(t *testing.T) (context.Context, *warehouse.Warehouse, *warehouse.Sharded) {
	t.Helper()
	c := chtest.StartCluster(t, chtest.ClusterOptions{Shards: 2, Replicas: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	opts := warehouse.DefaultOptions()
	opts.DSN = c.DSN("costpipe")
	w, err := warehouse.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.MigrateCluster(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	s, err := warehouse.OpenSharded(ctx, opts, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return ctx, w, s
}
