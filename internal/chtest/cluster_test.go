package chtest

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// insert appends xs to table's column x in one block (18.16 does not take
// INSERT … VALUES as a plain statement over the native protocol).
func insert(t *testing.T, conn driver.Conn, table string, xs ...uint64) {
	t.Helper()
	b, err := conn.PrepareBatch(t.Context(), "INSERT INTO "+table+" (x)")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		if err := b.Append(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestClusterReplicates starts one shard with two replicas: ON CLUSTER DDL
// creates the table on both, a row inserted into one is read from the other,
// and a stopped replica catches up after its restart.
func TestClusterReplicates(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Shards: 1, Replicas: 2})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	a, b := c.Shards[0][0], c.Shards[0][1]
	ca, cb := a.Conn(t, "default"), b.Conn(t, "default")
	if err := ca.Exec(ctx, "CREATE TABLE default.r ON CLUSTER "+c.Name+
		" (x UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/default/r', '{replica}') ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	insert(t, ca, "default.r", 1, 2)
	if err := cb.Exec(ctx, "SYSTEM SYNC REPLICA default.r"); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := cb.QueryRow(ctx, "SELECT sum(x) FROM default.r").Scan(&n); err != nil || n != 3 {
		t.Fatalf("replica 2 reads sum %d, %v; want 3", n, err)
	}

	b.Stop(t)
	insert(t, ca, "default.r", 4)
	b.Restart(t)
	cb = b.Conn(t, "default")
	if err := b.waitZooKeeper(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cb.Exec(ctx, "SYSTEM SYNC REPLICA default.r"); err != nil {
		t.Fatal(err)
	}
	if err := cb.QueryRow(ctx, "SELECT sum(x) FROM default.r").Scan(&n); err != nil || n != 7 {
		t.Fatalf("restarted replica reads sum %d, %v; want 7", n, err)
	}
}

// TestClusterShards starts two shards of one replica: a Distributed table
// reads both.
func TestClusterShards(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Shards: 2, Replicas: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c0 := c.Shards[0][0].Conn(t, "default")
	for _, q := range []string{
		"CREATE TABLE default.l ON CLUSTER " + c.Name + " (x UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/default/l', '{replica}') ORDER BY x",
		"CREATE TABLE default.d ON CLUSTER " + c.Name + " AS default.l ENGINE = Distributed(" + c.Name + ", default, l)",
	} {
		if err := c0.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for i, sh := range c.Shards {
		insert(t, sh[0].Conn(t, "default"), "default.l", uint64(i+1))
	}
	var n uint64
	if err := c0.QueryRow(ctx, "SELECT sum(x) FROM default.d").Scan(&n); err != nil || n != 3 {
		t.Fatalf("Distributed table reads sum %d, %v; want 3", n, err)
	}
}
