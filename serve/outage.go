package serve

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/costpipe/costpipe/internal/loglimit"
	"github.com/costpipe/costpipe/warehouse"
)

// outageLogEvery is how often a ClickHouse outage is logged while it lasts.
const outageLogEvery = time.Minute

// outage follows ClickHouse being unreachable, as the API's queries and
// /readyz's pings find it: the first failure is logged at once, then a
// line a minute with how many requests failed since, and one line when a
// query or ping succeeds again. An outage fails every request of a polling
// dashboard; one line each would bury everything else in the log.
type outage struct {
	log   *slog.Logger
	clock func() time.Time
	lines loglimit.Limit

	down   atomic.Bool // an outage is under way: the fast path of success checks only this
	mu     sync.Mutex
	since  time.Time // the outage's first failure
	failed int       // requests and pings it failed
}

// note records the outcome of a request's queries or a ping: err nil is a
// success, an error warehouse.Unavailable reports is an outage, any other
// error says nothing about reachability.
func (o *outage) note(err error) {
	switch {
	case err == nil:
		if o.down.Load() {
			o.recovered()
		}
	case warehouse.Unavailable(err):
		o.failure(err)
	}
}

func (o *outage) failure(err error) {
	now := o.clock()
	o.mu.Lock()
	if !o.down.Load() {
		o.since = now
		o.down.Store(true)
	}
	o.failed++
	since := o.since
	o.mu.Unlock()
	if n, _, due := o.lines.Note(now, outageLogEvery); due {
		o.log.Warn("ClickHouse is unreachable: API requests are answered 503 and /readyz 503 until it answers",
			"failures", n, "since", since.UTC().Format(time.RFC3339), "err", err)
	}
}

func (o *outage) recovered() {
	now := o.clock()
	o.mu.Lock()
	if !o.down.Load() {
		o.mu.Unlock()
		return
	}
	since, failed := o.since, o.failed
	o.since, o.failed = time.Time{}, 0
	o.down.Store(false)
	o.mu.Unlock()
	o.lines.Reset()
	o.log.Info("ClickHouse answers again", "unreachable_for", now.Sub(since).Round(time.Millisecond).String(), "failures", failed)
}
