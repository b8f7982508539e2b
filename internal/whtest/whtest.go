// Package whtest opens costpipe databases on the test servers of
// internal/chtest, for the tests of the packages above warehouse.
package whtest

import (
	"context"
	"testing"

	"github.com/costpipe/costpipe/warehouse"
)

// Migrated opens the costpipe database of dsn (a test server's, e.g.
// srv.DSN(srv.NewDatabase(t))), applies every migration and closes it when
// the test ends.
func Migrated(t testing.TB, dsn string) *warehouse.Warehouse {
	t.Helper()
	o := warehouse.DefaultOptions()
	o.DSN = dsn
	w, err := warehouse.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}
