package serve

import (
	"log/slog"
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
	run   loglimit.Failures
	// answered is when (time.Now, for its monotonic reading) a query or
	// ping last succeeded; zero after a failure that says ClickHouse is
	// unreachable.
	answered atomic.Pointer[time.Time]
}

// answeredWithin reports whether ClickHouse answered a query or ping in
// the last d and has not been found unreachable since.
func (o *outage) answeredWithin(d time.Duration) bool {
	t := o.answered.Load()
	return t != nil && time.Since(*t) < d
}

// note records the outcome of a request's queries or a ping: err nil is a
// success, an error warehouse.Unavailable reports is an outage, any other
// error says nothing about reachability.
func (o *outage) note(err error) {
	switch {
	case err == nil:
		now := time.Now()
		o.answered.Store(&now)
		if since, failures, ok := o.run.Succeed(); ok {
			o.log.Info("ClickHouse answers again", "unreachable_for", o.clock().Sub(since).Round(time.Millisecond).String(), "failures", failures)
		}
	case warehouse.Unavailable(err):
		o.answered.Store(nil)
		if n, since, due := o.run.Fail(o.clock(), outageLogEvery); due {
			o.log.Warn("ClickHouse is unreachable: API requests are answered 503 and /readyz 503 until it answers",
				"failures", n, "since", since.UTC().Format(time.RFC3339), "err", err)
		}
	}
}
