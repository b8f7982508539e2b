package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/faultproxy"
	"github.com/costpipe/costpipe/internal/nolisten"
	"github.com/costpipe/costpipe/warehouse"
)

// TestUnavailable drives the errors of real outages through OpenLazy: a
// server that is not there, one whose connections are cut and refused
// (faultproxy before the shared test server) and one that comes back; and
// checks that errors the server answers with, or a deadline, are not
// outages.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	query := func(w *warehouse.Warehouse) error {
		var one uint8
		return w.Conn().QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	open := func(addr string) *warehouse.Warehouse {
		o := warehouse.DefaultOptions()
		o.DSN = "clickhouse://" + addr + "/costpipe_unavailable"
		o.DialTimeout = 2 * time.Second
		w, err := warehouse.OpenLazy(o)
		if err != nil {
			t.Fatalf("OpenLazy needs no server: %v", err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}

	t.Run("no server", func(t *testing.T) {
		addr := nolisten.Addr(t) // nothing listens there
		w := open(addr)
		err := query(w)
		t.Logf("closed port: %v", err)
		if err == nil || !warehouse.Unavailable(err) {
			t.Fatalf("query against a closed port: %v; want an error Unavailable reports", err)
		}
		perr := w.Ping(ctx)
		if perr == nil || !warehouse.Unavailable(perr) || !strings.Contains(perr.Error(), addr) {
			t.Fatalf("Ping = %v; want an outage naming %s", perr, addr)
		}
	})

	t.Run("silent server", func(t *testing.T) {
		// It accepts connections (the kernel does, for a listener that
		// never reads) and never answers the handshake: a server hung or
		// still starting is as much an outage as one refusing.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		w := open(ln.Addr().String())
		perr := w.Ping(ctx)
		t.Logf("silent: %v", perr)
		if perr == nil || !warehouse.Unavailable(perr) {
			t.Fatalf("Ping of a server that never answers = %v; want an outage", perr)
		}
	})

	t.Run("cut, refused, back", func(t *testing.T) {
		srv := chtest.Shared(t)
		p := faultproxy.Start(t, srv.TCPAddr)
		w := open(p.Addr)
		if err := query(w); err != nil {
			t.Fatalf("through the proxy: %v", err)
		}
		p.Refuse(true)
		p.Cut()
		err := query(w)
		t.Logf("cut: %v", err)
		if err == nil || !warehouse.Unavailable(err) {
			t.Fatalf("connections cut and refused: %v; want an error Unavailable reports", err)
		}
		p.Refuse(false)
		if err := query(w); err != nil {
			t.Fatalf("the same Warehouse after the outage: %v; want it to connect again", err)
		}
	})

	t.Run("not outages", func(t *testing.T) {
		srv := chtest.Shared(t)
		w := open(srv.TCPAddr)
		err := w.Conn().Exec(ctx, "SELECT * FROM system.no_such_table")
		if err == nil || warehouse.Unavailable(err) {
			t.Fatalf("a server error: %v; want an error that is not an outage", err)
		}
		dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		err = w.Conn().Exec(dctx, "SELECT sleep(2)")
		t.Logf("deadline: %v", err)
		if err == nil || warehouse.Unavailable(err) {
			t.Fatalf("a query past its deadline: %v; want an error that is not an outage", err)
		}
		if warehouse.Unavailable(nil) || warehouse.Unavailable(context.Canceled) || warehouse.Unavailable(errors.New("x")) {
			t.Fatal("nil, context.Canceled or a plain error reported as an outage")
		}
	})
}

// TestPoolExhausted: waiting for a free pool connection is saturation, not
// an outage (a 503 "busy" in serve, not "ClickHouse is unreachable").
func TestPoolExhausted(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("cannot query usage: %w", clickhouse.ErrAcquireConnTimeout)
	if !warehouse.PoolExhausted(err) || warehouse.Unavailable(err) {
		t.Errorf("acquire timeout: exhausted %v, unavailable %v", warehouse.PoolExhausted(err), warehouse.Unavailable(err))
	}
	if warehouse.PoolExhausted(io.EOF) {
		t.Error("EOF read as an exhausted pool")
	}
}
