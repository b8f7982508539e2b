package serve

import (
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/faultproxy"
	"github.com/costpipe/costpipe/warehouse"
)

// proxiedServer is a Server on the fixture's database through a fault
// proxy in front of the shared ClickHouse (outages, held or slow answers),
// its pool of maxConns connections (0: the default), its options with Keys
// and the clock set, then edit (may be nil). The warehouse closes last, at
// the end of the test.
func proxiedServer(t *testing.T, maxConns int, edit func(*Options)) (*Server, *faultproxy.Proxy) {
	t.Helper()
	db := fixture(t).Database()
	p := faultproxy.Start(t, chtest.Shared(t).TCPAddr)
	o := warehouse.DefaultOptions()
	o.DSN = "clickhouse://" + p.Addr + "/" + db
	if maxConns > 0 {
		o.MaxOpenConns = maxConns
	}
	w, err := warehouse.OpenLazy(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	opts := DefaultOptions()
	opts.Keys = testKeys(t)
	opts.Now = func() time.Time { return now }
	if edit != nil {
		edit(&opts)
	}
	s, err := New(w, analytics.New(w, analytics.Options{Now: func() time.Time { return now }, Logger: opts.Logger}), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}
