package consumers

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/schemas"
)

// Options configure a Consumer.
type Options struct {
	// Brokers are the Kafka seed brokers. Default ["127.0.0.1:9092"].
	Brokers []string
	// Topic is the events topic. Default schemas.DefaultTopic.
	Topic string
	// DLQTopic receives invalid records. Default Topic + ".dlq"
	// (costpipe.events.dlq).
	DLQTopic string
	// Group is the consumer group. Default "costpipe-aggregator".
	Group string
	// InstanceID makes this instance a static member of the group (KIP-345)
	// when set: restarted under the same ID within SessionTimeout, it takes
	// its old place (and partitions) without a rebalance of the others, and
	// it does not leave the group on shutdown (its partitions wait for it
	// until SessionTimeout). Every live instance of the group needs its own
	// ID: one started with the ID of a running one fences it. Default ""
	// (a dynamic member: a new member ID on every start, a rebalance on
	// every join and leave).
	InstanceID string
	// FlushInterval is how often partial windows are landed. Default 5s.
	FlushInterval time.Duration
	// MaxEventAge sends events older than this (by the clock) to the DLQ.
	// Default 7 days.
	MaxEventAge time.Duration
	// MaxFuture sends events further than this in the future to the DLQ.
	// Default 5 minutes.
	MaxFuture time.Duration
	// DedupeWindow is how long, in arrival time (the Kafka record
	// timestamp), an event_id is remembered per partition: a record whose
	// event_id arrived within the window before it is a duplicate, whatever
	// the events' own timestamps. It holds across restarts and rebalances
	// (the window is warmed from Kafka on assignment). 0 turns deduplication
	// off (for producers that never resend). Default 1h.
	DedupeWindow time.Duration
	// DedupeMaxIDs bounds the event_ids remembered per partition; beyond it
	// the oldest part of the window is forgotten early (metric
	// costpipe_dedupe_evicted_total). Default 1,000,000.
	DedupeMaxIDs int
	// MaxWindows triggers an early flush when the Sink holds more windows.
	// Default 500,000.
	MaxWindows int
	// MaxPollRecords bounds the records processed between two flush checks.
	// Default 10,000.
	MaxPollRecords int
	// FlushTimeoutOnRebalance is how long, counted from when a rebalance
	// began, landing may keep retrying before the rebalance proceeds; after
	// it the unlanded state is dropped and replayed from Kafka by the
	// partitions' next owner. Must be below RebalanceTimeout. Default 20s.
	FlushTimeoutOnRebalance time.Duration
	// ShutdownTimeout is the shutdown's single budget, from the end of
	// Run's context (SIGTERM) to Run's return: landing stops 3 s before it
	// ends, the rest is for leaving the group. Default 25s, within
	// Kubernetes' default grace period of 30 s; at least 5s.
	ShutdownTimeout time.Duration
	// RebalanceTimeout is how long the group coordinator waits for members
	// to rejoin during a rebalance; a member slower than that is out of the
	// group and must not land for its old partitions any more. Default 60s.
	RebalanceTimeout time.Duration
	// SessionTimeout is how long the group waits for a silent member (a
	// crashed instance) before moving its partitions. From 6s to 30m (the
	// brokers' default group.min/max.session.timeout.ms). Default 45s.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the member heartbeats; it is also how
	// long a member may take to learn that a rebalance began (the answer to
	// a heartbeat says so), so every rebalance lasts up to one interval
	// longer than the slowest member's rejoin. At most SessionTimeout/3.
	// Default 1s (franz-go's and Kafka's 3s made each step of a rolling
	// restart about 2 s slower).
	HeartbeatInterval time.Duration
	// GroupLagInterval is how often the group's lag (committed offsets
	// against log end offsets, every partition, whoever owns it) is
	// refreshed; one refresh may take at most this long. Default 15s.
	GroupLagInterval time.Duration
	// StallTimeout is how long a partition may lag with its committed
	// offset not moving before the group counts as stalled (readiness
	// fails, a warning is logged every 30s). A healthy group commits once
	// per FlushInterval, so it must exceed FlushInterval + GroupLagInterval.
	// Default 0: 2m, or 2 × FlushInterval + GroupLagInterval when that is
	// longer (see stallTimeout).
	StallTimeout time.Duration
	// DLQSpoolDir receives DLQ records that Kafka refuses for good (a
	// non-retriable error, or DLQMaxAttempts failed sends), as JSON lines,
	// so that one poison record neither stops consumption nor is lost.
	// New creates it and checks that it can be written (CheckSpoolDir).
	// Default "costpipe-dlq-spool" (relative to the working directory).
	DLQSpoolDir string
	// DLQMaxAttempts is how many times a DLQ record is sent before it goes
	// to the spool. Default 5.
	DLQMaxAttempts int
	// Now is the clock for event-age bounds and rebalance deadlines.
	// Default time.Now.
	Now func() time.Time
	// Logger receives lifecycle lines. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the consumer's metrics. Default nil.
	Registerer prometheus.Registerer
	// ClientOpts are extra franz-go options (TLS, SASL, ...).
	ClientOpts []kgo.Opt
}

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{
		Brokers: []string{"127.0.0.1:9092"}, Topic: schemas.DefaultTopic, DLQTopic: schemas.DefaultDLQTopic,
		Group: "costpipe-aggregator", FlushInterval: 5 * time.Second, MaxEventAge: 7 * 24 * time.Hour,
		MaxFuture: 5 * time.Minute, DedupeWindow: time.Hour, DedupeMaxIDs: 1_000_000, MaxWindows: 500_000,
		MaxPollRecords: 10_000, FlushTimeoutOnRebalance: 20 * time.Second, RebalanceTimeout: 60 * time.Second,
		ShutdownTimeout: DefaultShutdownTimeout,
		SessionTimeout:  45 * time.Second, HeartbeatInterval: time.Second, GroupLagInterval: 15 * time.Second,
		DLQSpoolDir: "costpipe-dlq-spool", DLQMaxAttempts: 5,
		Now: time.Now, Logger: slog.Default(),
	}
}

// stallTimeout is StallTimeout with its default resolved.
func (o Options) stallTimeout() time.Duration {
	if o.StallTimeout != 0 {
		return o.StallTimeout
	}
	return max(2*time.Minute, 2*o.FlushInterval+o.GroupLagInterval)
}

const instanceIDChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

// maxSessionTimeout is Kafka's default group.max.session.timeout.ms: a
// broker refuses a longer session timeout on every join
// (INVALID_SESSION_TIMEOUT).
const maxSessionTimeout = 30 * time.Minute

// Validate reports the first option that cannot work. Options set by a
// flag of `costpipe aggregate` are named by the flag.
func (o Options) Validate() error {
	switch {
	case len(o.Brokers) == 0:
		return errors.New("no Kafka brokers (--brokers)")
	case o.Topic == "":
		return errors.New("empty topic (--topic)")
	case o.DLQTopic == "" || o.DLQTopic == o.Topic:
		return fmt.Errorf("DLQ topic %q must be set and differ from the events topic (--topic)", o.DLQTopic)
	case o.Group == "":
		return errors.New("empty consumer group (--group)")
	case o.FlushInterval < 10*time.Millisecond:
		return fmt.Errorf("--flush-interval %s is below 10ms", o.FlushInterval)
	case o.MaxEventAge <= 0:
		return fmt.Errorf("--max-event-age %s must be > 0", o.MaxEventAge)
	case o.MaxFuture < 0:
		return fmt.Errorf("--max-future %s must be ≥ 0", o.MaxFuture)
	case o.DedupeWindow != 0 && o.DedupeWindow < time.Minute:
		return fmt.Errorf("--dedupe-window %s is below 1m (0 turns dedupe off)", o.DedupeWindow)
	case o.DedupeMaxIDs < 1000:
		return fmt.Errorf("--dedupe-max-ids %d is below 1000", o.DedupeMaxIDs)
	case o.MaxWindows < 1 || o.MaxPollRecords < 1:
		return errors.New("max windows and max poll records must be ≥ 1")
	case o.SessionTimeout < 6*time.Second:
		return fmt.Errorf("--session-timeout %s is below 6s (the broker minimum)", o.SessionTimeout)
	case o.SessionTimeout > maxSessionTimeout:
		return fmt.Errorf("--session-timeout %s is above 30m (Kafka's default group.max.session.timeout.ms): the broker would refuse every join with INVALID_SESSION_TIMEOUT", o.SessionTimeout)
	case o.HeartbeatInterval < 100*time.Millisecond || o.HeartbeatInterval > o.SessionTimeout/3:
		return fmt.Errorf("--heartbeat-interval %s must be between 100ms and a third of --session-timeout %s", o.HeartbeatInterval, o.SessionTimeout)
	case o.GroupLagInterval < 100*time.Millisecond:
		return fmt.Errorf("--group-lag-interval %s is below 100ms", o.GroupLagInterval)
	case o.StallTimeout != 0 && o.StallTimeout <= o.FlushInterval+o.GroupLagInterval:
		return fmt.Errorf("--stall-timeout %s must exceed --flush-interval %s plus --group-lag-interval %s (a healthy group commits once per flush)",
			o.StallTimeout, o.FlushInterval, o.GroupLagInterval)
	case len(o.InstanceID) > 249 || strings.Trim(o.InstanceID, instanceIDChars) != "" || o.InstanceID == "." || o.InstanceID == "..":
		// Kafka's rule for group.instance.id (the one for topic names).
		return fmt.Errorf("--instance-id %q must be at most 249 characters of ASCII letters, digits, '.', '_' and '-' (and not \".\" or \"..\")", o.InstanceID)
	case o.RebalanceTimeout < time.Second:
		return fmt.Errorf("--rebalance-timeout %s is below 1s", o.RebalanceTimeout)
	case o.FlushTimeoutOnRebalance <= 0 || o.FlushTimeoutOnRebalance >= o.RebalanceTimeout:
		return fmt.Errorf("--flush-timeout-on-rebalance %s must be > 0 and below --rebalance-timeout %s", o.FlushTimeoutOnRebalance, o.RebalanceTimeout)
	case o.ShutdownTimeout < minShutdownTimeout:
		return fmt.Errorf("--shutdown-timeout %s is below %s (the last %s of it are for leaving the group)", o.ShutdownTimeout, minShutdownTimeout, shutdownLeaveReserve)
	case o.DLQSpoolDir == "":
		return errors.New("empty DLQ spool directory (--dlq-spool)")
	case o.DLQMaxAttempts < 1:
		return fmt.Errorf("DLQ max attempts %d must be ≥ 1", o.DLQMaxAttempts)
	case o.Now == nil || o.Logger == nil:
		return errors.New("nil clock or logger")
	}
	return nil
}
