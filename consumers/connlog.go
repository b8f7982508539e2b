package consumers

import (
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/loglimit"
)

// connLogEvery is how often at most connLog logs the failures of one broker.
const connLogEvery = time.Minute

// connLog is a franz-go hook that logs failed connections to the brokers:
// a broker's first failure at once, then one line a connLogEvery at most
// while it keeps failing (with how many failures since), and a line when
// it connects again. franz-go retries silently, so without it an
// aggregator given the wrong --brokers logged nothing until the group's
// health check gave up on an assignment, a rebalance timeout later.
type connLog struct {
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	down map[string]*brokerDown // by host:port
}

// brokerDown is a broker whose last connection failed.
type brokerDown struct {
	since time.Time
	lines loglimit.Limit
}

var _ kgo.HookBrokerConnect = (*connLog)(nil)

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (l *connLog) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.down[addr]
	if err == nil {
		if d != nil {
			delete(l.down, addr)
			l.log.Info("connected to the Kafka broker again", "broker", addr, "down_for", now.Sub(d.since).Round(time.Second))
		}
		return
	}
	if d == nil {
		if l.down == nil {
			l.down = map[string]*brokerDown{}
		}
		d = &brokerDown{since: now}
		l.down[addr] = d
	}
	if n, _, due := d.lines.Note(now, connLogEvery); due {
		l.log.Warn("cannot connect to a Kafka broker; retrying", "broker", addr, "failures", n,
			"down_for", now.Sub(d.since).Round(time.Second), "err", err)
	}
}
