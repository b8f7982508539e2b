package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/producers/ingest"
)

// Options configure a Server. Start from DefaultOptions; zero values are
// not replaced by defaults.
type Options struct {
	// Keys are the API keys, the ingest gateway's key file format
	// (ingest.LoadKeys): a key bound to a tenant reads only that tenant, a
	// key bound to "*" reads every tenant. Required: there is no
	// unauthenticated mode.
	Keys *ingest.Keys

	// KeysFile is the file Keys were read from, if any: Server.ReloadKeys
	// (`costpipe serve` calls it on SIGHUP) reads it again and swaps the
	// keys in without dropping a request. Default "": ReloadKeys fails.
	KeysFile string

	// Catalog classifies the traffic in /api/v1/prices. Nil (the default)
	// means pricing.Default(), parsed when New runs, not by DefaultOptions:
	// flag defaults built from DefaultOptions must not parse the embedded
	// catalog at every command's start-up.
	Catalog *pricing.Catalog

	// Now is the clock that anchors since and the default at of growth and
	// forecast. Default time.Now.
	Now func() time.Time

	// QueryTimeout bounds one API request's work (waiting for a slot and
	// the queries); past it the request is answered 503. Default 30 s.
	QueryTimeout time.Duration

	// MaxConcurrent bounds the API requests running queries at once; more
	// wait for a slot within QueryTimeout. Default 16.
	MaxConcurrent int

	// MaxResponseBytes bounds an API response body; a larger answer is
	// refused with 400 and a hint to narrow the request, so a careless
	// request never buffers an unbounded body. Default 32 MiB.
	MaxResponseBytes int

	// ReadHeaderTimeout, WriteTimeout and IdleTimeout are the HTTP
	// server's. Defaults 5 s, QueryTimeout + 10 s, 120 s.
	ReadHeaderTimeout, WriteTimeout, IdleTimeout time.Duration

	// ShutdownTimeout bounds the graceful shutdown (Serve's context ended):
	// no new connection is accepted, the requests in flight run on until
	// ShutdownTimeout less min(2 s, half of it) (shutdownGrace), then their
	// work is cancelled and each is answered 503 with Retry-After, so Serve
	// returns within ShutdownTimeout. A request may run QueryTimeout, so
	// with ShutdownTimeout below QueryTimeout + 2 s the longest requests are
	// cut at a shutdown; the default stays within Kubernetes' default
	// grace period (30 s) before SIGKILL, which cuts every request. Default
	// 25 s.
	ShutdownTimeout time.Duration

	// CacheTTL keeps each rendered API answer this long and lets
	// concurrent identical requests share one computation (answerCache);
	// 0 turns the cache off. Default 5 s, the aggregator's default flush
	// interval: the rollups are that stale already.
	CacheTTL time.Duration

	// MaxCacheBytes bounds the cached answers. Default 64 MiB.
	MaxCacheBytes int

	// Alerts, when set, serves /api/v1/alerts from the alerts tables
	// (migration 0006). Default nil: the endpoint answers 404.
	Alerts *alerts.Store

	// Logger receives request failures. Default slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns Options with every default filled in but Keys.
func DefaultOptions() Options {
	return Options{
		Now:               time.Now,
		QueryTimeout:      30 * time.Second,
		MaxConcurrent:     16,
		MaxResponseBytes:  32 << 20,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      40 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   25 * time.Second,
		CacheTTL:          5 * time.Second,
		MaxCacheBytes:     64 << 20,
		Logger:            slog.Default(),
	}
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Keys == nil:
		return errors.New("serve needs API keys (--keys FILE): a key bound to a tenant reads that tenant, one bound to * every tenant")
	case o.Now == nil:
		return errors.New("serve clock Now must be set")
	case o.Logger == nil:
		return errors.New("serve logger must be set")
	case o.QueryTimeout <= 0:
		return fmt.Errorf("serve query timeout must be > 0, got %v", o.QueryTimeout)
	case o.MaxConcurrent <= 0:
		return fmt.Errorf("serve max concurrent requests must be > 0, got %d", o.MaxConcurrent)
	case o.MaxResponseBytes < 1024:
		return fmt.Errorf("serve max response bytes must be ≥ 1024, got %d", o.MaxResponseBytes)
	case o.CacheTTL < 0 || (o.CacheTTL > 0 && o.MaxCacheBytes < 1<<20):
		return fmt.Errorf("serve cache: TTL must be ≥ 0 (0 turns it off) and the cache at least 1 MiB, got %v and %d bytes", o.CacheTTL, o.MaxCacheBytes)
	case o.ReadHeaderTimeout <= 0 || o.WriteTimeout <= 0 || o.IdleTimeout <= 0 || o.ShutdownTimeout <= 0:
		return errors.New("serve HTTP timeouts must be > 0")
	}
	return nil
}
