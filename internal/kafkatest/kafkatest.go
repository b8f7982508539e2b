// Package kafkatest starts the embedded Kafka-protocol broker for tests.
//
// Every test gets its own broker on a free 127.0.0.1 port, seeded with the
// costpipe.events and costpipe.events.dlq topics and closed when the test
// ends. Set COSTPIPE_TEST_BROKER_LOG=debug (or info, warn, error) to see the
// broker's log on stderr.
package kafkatest

import (
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/costpipe/costpipe/broker"
)

// Start starts a broker on a free port with the default topics, each of the
// given number of partitions, and closes it in t.Cleanup. It calls t.Fatal
// if the broker cannot start.
func Start(t testing.TB, partitions int) *broker.Broker {
	t.Helper()
	opts := broker.DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.Partitions = partitions
	opts.Logger = loggerFromEnv()
	b, err := broker.Start(opts)
	if err != nil {
		t.Fatalf("cannot start test broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// loggerFromEnv returns a stderr logger at the level named by
// COSTPIPE_TEST_BROKER_LOG, or nil when it is unset or unknown.
func loggerFromEnv() *slog.Logger {
	var level slog.Level
	switch strings.ToLower(os.Getenv("COSTPIPE_TEST_BROKER_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// StartWithOptions starts a broker as Start does, after edit has changed
// its options (e.g. TLS or SASL users), and closes it in t.Cleanup.
func StartWithOptions(t testing.TB, partitions int, edit func(*broker.Options)) *broker.Broker {
	t.Helper()
	opts := broker.DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.Partitions = partitions
	opts.Logger = loggerFromEnv()
	edit(&opts)
	b, err := broker.Start(opts)
	if err != nil {
		t.Fatalf("cannot start test broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}
