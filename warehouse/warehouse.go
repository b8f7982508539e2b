// Package warehouse owns costpipe's ClickHouse side: the connection, the
// versioned migrations embedded from schemas/clickhouse, and (with the
// aggregator) the columnar inserts and the high-water marks the exactly-once
// landing recovers from.
//
// A *Warehouse is safe for concurrent use; it wraps one clickhouse-go
// connection pool. Every method takes a ctx and honours its cancellation.
package warehouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/costpipe/costpipe/internal/secure"
)

// DefaultDSN is the contract's default for --clickhouse / COSTPIPE_CLICKHOUSE.
const DefaultDSN = "clickhouse://127.0.0.1:9000/costpipe"

// Options configure Open.
type Options struct {
	// DSN is a clickhouse-go DSN, e.g. clickhouse://user:pass@host:9000/costpipe.
	// Its path names the costpipe database. Default DefaultDSN.
	DSN string
	// DialTimeout bounds connecting to a server. Default 5s.
	DialTimeout time.Duration
	// MaxOpenConns bounds the connection pool. Default 4.
	MaxOpenConns int
	// MigrateLockWait bounds how long Migrate waits while another process
	// holds the migration lock. Default 15m.
	MigrateLockWait time.Duration
	// TLS, when set, makes connections use TLS with this config (a CA file,
	// a client certificate), with or without secure=true in the DSN; the
	// DSN's skip_verify and tls_server_name still apply. Default nil: TLS
	// only with secure=true, verified against the system roots.
	TLS *tls.Config
}

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{DSN: DefaultDSN, DialTimeout: 5 * time.Second, MaxOpenConns: 4, MigrateLockWait: 15 * time.Minute}
}

// validDBName reports whether db matches ^[A-Za-z_][A-Za-z0-9_]{0,63}$,
// written out: that regexp compiles to 64 copies of its class, about a
// millisecond of every command's start.
func validDBName(db string) bool {
	if db == "" || len(db) > 64 || db[0] >= '0' && db[0] <= '9' {
		return false
	}
	for i := 0; i < len(db); i++ {
		c := db[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	if _, _, err := parseDSN(o.DSN); err != nil {
		return err
	}
	if o.DialTimeout <= 0 {
		return fmt.Errorf("clickhouse dial timeout must be > 0, got %s", o.DialTimeout)
	}
	if o.MaxOpenConns <= 0 {
		return fmt.Errorf("clickhouse max open connections must be > 0, got %d", o.MaxOpenConns)
	}
	if o.MigrateLockWait < 0 {
		return fmt.Errorf("migration lock wait must be ≥ 0, got %s", o.MigrateLockWait)
	}
	return nil
}

func parseDSN(dsn string) (*clickhouse.Options, string, error) {
	if dsn == "" {
		return nil, "", errors.New("clickhouse DSN is empty: want e.g. " + DefaultDSN)
	}
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && (strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
		// clickhouse-go would take it, then fail on the first query with
		// "Unknown setting client_protocol_version".
		return nil, "", fmt.Errorf("clickhouse DSN %q is an HTTP address: costpipe speaks ClickHouse's native protocol, want clickhouse://HOST:9000/DATABASE (port 9000 or 9440 with TLS, not the HTTP port 8123)", redact(dsn))
	}
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("cannot parse clickhouse DSN %q: %w", redact(dsn), err)
	}
	db := opts.Auth.Database
	if db == "" {
		db = "costpipe"
	}
	if !validDBName(db) {
		return nil, "", fmt.Errorf("clickhouse DSN %q: database name %q must be 1 to 64 ASCII letters, digits or underscores, not starting with a digit", redact(dsn), db)
	}
	if opts.MaxCompressionBuffer == 0 { // not in the DSN
		opts.MaxCompressionBuffer = sendChunk
	}
	return opts, db, nil
}

var passwordRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(//[^:/@]*:)[^@]*@`) })

// redact hides a password in a DSN for error messages and logs.
func redact(dsn string) string { return passwordRE().ReplaceAllString(dsn, "${1}***@") }

// sendChunk is how many bytes of an insert's block the driver gathers
// before writing them to the socket (its MaxCompressionBuffer, 10 MiB by
// default; a DSN's max_compression_buffer overrides this). The driver keeps
// that buffer per connection, grown to the chunk plus the largest column it
// encoded: a smaller chunk grows it less on a catch-up's first flush and
// keeps less memory afterwards, for a few more writes of at least 1 MiB.
const sendChunk = 1 << 20

// Warehouse is a connection to the ClickHouse server that holds costpipe's database.
type Warehouse struct {
	conn     driver.Conn
	database string
	dsn      string
	tls      *tls.Config // Options.TLS
	secure   bool        // connections use TLS (Options.TLS or the DSN's secure=true)
	lockWait time.Duration

	// enc is InsertRollups' buffer for one column's Native encoding, kept
	// from one insert to the next so that a flush writes into memory the
	// process already has (see native.go): it holds as much as the largest
	// column of the largest insert so far, a few MB in steady state, tens
	// after a catch-up flush. Copies of a Warehouse share it.
	enc *nativeBuf

	// closed makes Close close the pool once, for every copy. conn is
	// never cleared: a query still running in another goroutine (an
	// abandoned computation of serve) gets the driver's "connection
	// closed" error, not a data race on the field.
	closed *sync.Once
}

// Open connects to ClickHouse and checks the server answers. It does not
// require the database to exist (Migrate creates it): the session's default
// database is "default" and every statement names the costpipe database.
func Open(ctx context.Context, o Options) (*Warehouse, error) {
	w, err := open(o)
	if err != nil {
		return nil, err
	}
	if err := w.Ping(ctx); err != nil {
		w.conn.Close()
		return nil, err
	}
	return w, nil
}

// OpenLazy is Open without the check that the server answers: the pool
// connects when the first statements run, and again after an outage. A
// long-running reader (costpipe serve) starts with it before ClickHouse
// does, answers 503 while it is unreachable (see Unavailable) and needs no
// restart when it comes back; Ping says whether it answers now.
func OpenLazy(o Options) (*Warehouse, error) {
	w, err := open(o)
	return w, err
}

// open makes the Warehouse of o without connecting.
func open(o Options) (*Warehouse, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	opts, db, _ := parseDSN(o.DSN)
	applyTLS(opts, o.TLS)
	opts.Auth.Database = "default"
	opts.DialTimeout = o.DialTimeout
	opts.MaxOpenConns = o.MaxOpenConns
	if opts.MaxIdleConns > o.MaxOpenConns || opts.MaxIdleConns == 0 {
		opts.MaxIdleConns = o.MaxOpenConns
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open clickhouse %q: %w", redact(o.DSN), err)
	}
	return &Warehouse{conn: conn, database: db, dsn: o.DSN, tls: o.TLS, secure: opts.TLS != nil, lockWait: o.MigrateLockWait, enc: new(nativeBuf), closed: new(sync.Once)}, nil
}

// Ping checks that the server answers, with the same explanation of a TLS
// or plaintext mismatch as Open.
func (w *Warehouse) Ping(ctx context.Context) error {
	if err := w.conn.Ping(ctx); err != nil {
		// A refused login or certificate reached the server: it is not
		// "cannot reach".
		if e := secure.ExplainClickHouse(err, w.secure); secure.Permanent(e) {
			return fmt.Errorf("%w (clickhouse at %q)", e, redact(w.dsn))
		}
		return secure.ExplainClickHouse(fmt.Errorf("cannot reach clickhouse at %q: %w", redact(w.dsn), err), w.secure)
	}
	return nil
}

// Database is the costpipe database name taken from the DSN.
func (w *Warehouse) Database() string { return w.database }

// Conn exposes the underlying clickhouse-go connection to costpipe's own
// packages (inserts, queries). It stays owned by the Warehouse.
func (w *Warehouse) Conn() driver.Conn { return w.conn }

// ServerVersion returns the server's version string, e.g. "18.16.1".
func (w *Warehouse) ServerVersion(ctx context.Context) (string, error) {
	var v string
	if err := w.conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", fmt.Errorf("cannot read clickhouse version: %w", err)
	}
	return v, nil
}

// Close releases the connection pool. Safe to call twice.
func (w *Warehouse) Close() error {
	if w == nil || w.conn == nil {
		return nil
	}
	var err error
	w.closed.Do(func() { err = w.conn.Close() })
	return err
}
