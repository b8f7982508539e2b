package warehouse

import (
	"crypto/tls"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// applyTLS sets opts' TLS from Options.TLS, keeping what the DSN asked for
// (skip_verify, tls_server_name) on top of it. A nil t leaves opts as the
// DSN made them.
func applyTLS(opts *clickhouse.Options, t *tls.Config) {
	if t == nil {
		return
	}
	c := t.Clone()
	if dsn := opts.TLS; dsn != nil {
		c.InsecureSkipVerify = c.InsecureSkipVerify || dsn.InsecureSkipVerify
		if c.ServerName == "" {
			c.ServerName = dsn.ServerName
		}
	}
	opts.TLS = c
}
