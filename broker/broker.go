// Package broker runs an embedded Kafka-protocol broker for development, tests
// and the demo.
//
// The broker is franz-go's kfake, a real implementation of the Kafka wire
// protocol (produce, fetch, consumer groups, idempotent and transactional
// producers), listening on a real TCP port. Every client, whether the costpipe
// binary, a test or kcat, talks to it over the network exactly as it would to
// Apache Kafka or Redpanda. It is a single node; records live in memory unless
// Options.DataDir is set. It is not meant for production.
//
// A Broker is safe for concurrent use. Close stops it; Close may be called
// more than once.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/costpipe/costpipe/internal/flock"
)

// Default topic names seeded by DefaultOptions.
const (
	// EventsTopic is the default topic inference events are produced to.
	EventsTopic = "costpipe.events"
	// DLQTopic is the default dead-letter topic for invalid records.
	DLQTopic = "costpipe.events.dlq"
)

// maxPartitions bounds Options.Partitions: every partition costs memory in
// kfake, and a development broker has no use for more.
const maxPartitions = 10000

// Options configures a Broker. Start from DefaultOptions and change what you
// need; zero values are not replaced by defaults.
type Options struct {
	// Listen is the TCP address to listen on, as host:port. Port 0 picks a
	// free port (see Broker.Addr). Default "127.0.0.1:9092".
	Listen string

	// AdvertisedHost is the host the broker tells clients to connect to in
	// metadata responses. Default "": the host of Listen, or 127.0.0.1 when
	// Listen names no host or a wildcard address such as 0.0.0.0. Set it
	// when clients reach the broker under another name (a container name).
	AdvertisedHost string

	// Partitions is the number of partitions of each seeded topic and of
	// topics created automatically or with the broker default. Default 6.
	Partitions int

	// Topics are created at start, each with Partitions partitions.
	// Default costpipe.events and costpipe.events.dlq.
	Topics []string

	// AutoCreateTopics lets a client's metadata request create a missing
	// topic (as Apache Kafka's auto.create.topics.enable). Default true.
	AutoCreateTopics bool

	// DataDir, when set, persists topics, records and committed offsets in
	// that directory and reloads them on the next Start with the same
	// directory (Topics missing from it are created; a topic it has keeps
	// its partitions). Writes are not fsynced: what a process crash or a
	// kill leaves is kept, an operating system crash may lose the last
	// writes. One Broker at a time uses a directory (a lock file in it).
	// Default "": everything lives in memory and is lost on Close.
	DataDir string

	// Logger receives the broker's log lines. Default nil: discard.
	Logger *slog.Logger

	// TLS, when set, makes the listener TLS-only with this server config
	// (its certificate; ClientAuth for mutual TLS). Default nil: plaintext.
	TLS *tls.Config

	// Users, when not empty, turn SASL authentication on: a client must
	// log in as one of them before any other request. Default none.
	Users []User
}

// User is a SASL login of the broker.
type User struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	// Name and Password are the credentials.
	Name, Password string
}

// DefaultOptions returns the default Options: listen on 127.0.0.1:9092 with
// costpipe.events and costpipe.events.dlq of 6 partitions each, in memory,
// topics auto-created, no logging.
func DefaultOptions() Options {
	return Options{
		Listen:           "127.0.0.1:9092",
		Partitions:       6,
		Topics:           []string{EventsTopic, DLQTopic},
		AutoCreateTopics: true,
	}
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	_, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return fmt.Errorf("cannot parse listen address %q: %w", o.Listen, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("cannot use listen address %q: port must be a number from 0 to 65535", o.Listen)
	}
	if h := o.AdvertisedHost; h != "" && !validHost(h) {
		return fmt.Errorf("cannot advertise host %q: want a host name or an IP address, without a port (clients connect to it on the --listen port)", h)
	}
	if o.Partitions < 1 || o.Partitions > maxPartitions {
		return fmt.Errorf("cannot use %d partitions: must be from 1 to %d", o.Partitions, maxPartitions)
	}
	for _, u := range o.Users {
		switch u.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return fmt.Errorf("cannot add SASL user %q: mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", u.Name, u.Mechanism)
		}
		if u.Name == "" || u.Password == "" {
			return fmt.Errorf("cannot add a SASL user without a name or password (name %q)", u.Name)
		}
	}
	seen := make(map[string]bool, len(o.Topics))
	for _, t := range o.Topics {
		if err := validTopic(t); err != nil {
			return err
		}
		if seen[t] {
			return fmt.Errorf("cannot create topic %q twice", t)
		}
		seen[t] = true
	}
	return nil
}

// validTopic applies Apache Kafka's topic name rules.
func validTopic(t string) error {
	switch {
	case t == "":
		return errors.New("cannot create a topic with an empty name")
	case t == "." || t == "..":
		return fmt.Errorf("cannot create topic %q: the name is reserved", t)
	case len(t) > 249:
		return fmt.Errorf("cannot create topic %q: the name is longer than 249 bytes", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("cannot create topic %q: only ASCII letters, digits, '.', '_' and '-' are allowed", t)
		}
	}
	return nil
}

// Broker is a running embedded broker. Create it with Start.
type Broker struct {
	cluster   *kfake.Cluster
	addr      string
	closeOnce sync.Once
	lock      *os.File // DataDir's lock file, held until Close
}

// ErrDataDirInUse is Start's error when another broker uses Options.DataDir.
var ErrDataDirInUse = errors.New("another broker uses this data directory")

// lockDataDir takes dir's lock file (creating dir), or fails with
// ErrDataDirInUse: two brokers writing one directory would each overwrite
// the other's state.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create data directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".costpipe-broker.lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open the lock file of data directory %s: %w", dir, err)
	}
	ok, err := flock.TryLock(f)
	if err != nil || !ok {
		f.Close()
		if err == nil {
			err = ErrDataDirInUse
		}
		return nil, fmt.Errorf("cannot lock data directory %s: %w", dir, err)
	}
	return f, nil
}

// Start validates opts, starts the broker and returns once it accepts
// connections on Addr.
func Start(opts Options) (*Broker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(opts.Listen)
	advertised := opts.AdvertisedHost
	if advertised == "" {
		advertised = host
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			advertised = "127.0.0.1"
		}
	}

	// kfake always asks to listen on 127.0.0.1:<port>; listen where the
	// options say instead, and advertise the host clients should use.
	listen := func(network, _ string) (net.Listener, error) {
		ln, err := net.Listen(network, opts.Listen)
		if err != nil {
			return nil, err
		}
		return &advertisedListener{Listener: ln, host: advertised}, nil
	}

	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.DefaultNumPartitions(opts.Partitions),
		kfake.ClusterID("costpipe"),
	}
	if len(opts.Topics) > 0 {
		kopts = append(kopts, kfake.SeedTopics(int32(opts.Partitions), opts.Topics...))
	}
	if opts.AutoCreateTopics {
		kopts = append(kopts, kfake.AllowAutoTopicCreation())
	}
	var lock *os.File
	if opts.DataDir != "" {
		var err error
		if lock, err = lockDataDir(opts.DataDir); err != nil {
			return nil, err
		}
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	if opts.Logger != nil {
		kopts = append(kopts, kfake.WithLogger(slogAdapter{opts.Logger}))
	}
	if opts.TLS != nil {
		kopts = append(kopts, kfake.TLS(opts.TLS))
	}
	if len(opts.Users) > 0 {
		kopts = append(kopts, kfake.EnableSASL())
		for _, u := range opts.Users {
			kopts = append(kopts, kfake.Superuser(u.Mechanism, u.Name, u.Password))
		}
	}

	cluster, err := kfake.NewCluster(kopts...)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, fmt.Errorf("cannot start broker on %q: %w", opts.Listen, err)
	}
	b := &Broker{cluster: cluster, lock: lock}
	addrs := cluster.ListenAddrs()
	if len(addrs) != 1 {
		b.Close()
		return nil, fmt.Errorf("cannot start broker on %q: got %d listeners, want 1", opts.Listen, len(addrs))
	}
	b.addr = addrs[0]
	// A data directory's state was loaded instead of the seeded topics:
	// create the ones it lacks (a new --topic); one it has keeps its
	// partitions, which Partitions reports.
	for _, t := range opts.Topics {
		if cluster.TopicInfo(t) != nil {
			if n := len(cluster.PartitionInfos(t)); n != opts.Partitions && opts.Logger != nil {
				opts.Logger.Warn("topic kept from the data directory with another partition count", "topic", t,
					"partitions", n, "asked", opts.Partitions, "data_dir", opts.DataDir)
			}
			continue
		}
		if err := cluster.CreateTopic(t, int32(opts.Partitions), nil); err != nil {
			b.Close()
			return nil, fmt.Errorf("cannot create topic %s: %w", t, err)
		}
	}
	if opts.Logger != nil {
		opts.Logger.Info("broker started", "addr", b.addr, "listen", opts.Listen,
			"partitions", opts.Partitions, "topics", opts.Topics, "data_dir", opts.DataDir)
	}
	return b, nil
}

// Addr returns the address clients connect to, "host:port" with the port
// actually bound (never 0), e.g. "127.0.0.1:9092".
func (b *Broker) Addr() string { return b.addr }

// Partitions returns the number of partitions of topic, 0 when the broker
// has no such topic.
func (b *Broker) Partitions(topic string) int {
	if b.cluster.TopicInfo(topic) == nil {
		return 0
	}
	return len(b.cluster.PartitionInfos(topic))
}

// Close stops listening, closes client connections and, with
// Options.DataDir, writes the final state to disk and releases the
// directory. It is safe to call more than once and from several
// goroutines.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.cluster.Close()
		if b.lock != nil {
			b.lock.Close()
		}
	})
}

// advertisedListener reports host:<bound port> as its address, which kfake
// hands to clients in metadata and coordinator responses.
type advertisedListener struct {
	net.Listener
	host string
}

func (l *advertisedListener) Addr() net.Addr {
	a := l.Listener.Addr()
	port := 0
	if tcp, ok := a.(*net.TCPAddr); ok {
		port = tcp.Port
	}
	return advertisedAddr{network: a.Network(), hostport: net.JoinHostPort(l.host, strconv.Itoa(port))}
}

type advertisedAddr struct{ network, hostport string }

func (a advertisedAddr) Network() string { return a.network }
func (a advertisedAddr) String() string  { return a.hostport }

// slogAdapter forwards kfake's printf-style log lines to a slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, msg string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelInfo:
		sl = slog.LevelInfo
	case kfake.LogLevelDebug:
		sl = slog.LevelDebug
	default:
		return
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, sl) {
		return
	}
	a.l.Log(ctx, sl, fmt.Sprintf(msg, args...), "component", "kfake")
}

// validHost reports whether h is an IP address or a DNS host name (labels
// of letters, digits, '-' and '_', dot-separated, at most 253 bytes).
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
