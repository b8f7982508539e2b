package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTopic is the Kafka receiver's topic when none is configured.
const DefaultTopic = "costpipe.alerts"

// Kafka delivers notifications as records on a topic: key Notification.ID
// (so a consumer compacts or deduplicates by it), value Notification.Body,
// headers type, rule and content-type. It shares the process's *kgo.Client
// and does not close it. Safe for concurrent use.
type Kafka struct {
	name   string
	topic  string
	client *kgo.Client
}

// NewKafka builds a Kafka receiver from a validated configuration; client
// is required (its owner closes it after the Dispatcher).
func NewKafka(cfg ReceiverConfig, client *kgo.Client) (*Kafka, error) {
	if client == nil {
		return nil, fmt.Errorf("receiver %q: type kafka needs a Kafka client (Deps.Kafka)", cfg.Name)
	}
	topic := cfg.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	return &Kafka{name: cfg.Name, topic: topic, client: client}, nil
}

// Name returns the receiver's configured name.
func (k *Kafka) Name() string { return k.name }

// Topic returns the topic records go to.
func (k *Kafka) Topic() string { return k.topic }

// Deliver produces one record and waits until the broker acknowledged it or
// ctx is done, whichever comes first. An error Kafka calls non-retriable
// (record too large, not authorized, invalid topic) is permanent; others,
// and ctx ending first, are retried.
//
// It does not wait on the client once ctx is done: franz-go's idempotent
// producer keeps a record a broker took but never answered until that
// broker answers (it cannot tell a lost request from a lost reply), however
// the record's context ends, so a synchronous produce could outlive every
// attempt timeout and the dispatcher's Close. The record may then still be
// written after Deliver returned an error, and the retry writes it again: a
// consumer deduplicates by the key, the notification's ID.
func (k *Kafka) Deliver(ctx context.Context, n Notification) error {
	if n.ID == "" {
		return Permanent(fmt.Errorf("kafka %q: notification has no ID (the record key)", k.name))
	}
	body, err := n.Body()
	if err != nil {
		return Permanent(fmt.Errorf("kafka %q: %w", k.name, err))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka %q: not produced to %q: %w", k.name, k.topic, err)
	}
	rec := &kgo.Record{
		Topic: k.topic,
		Key:   []byte(n.ID),
		Value: body,
		Headers: []kgo.RecordHeader{
			{Key: "type", Value: []byte(n.Type)},
			{Key: "rule", Value: []byte(n.Rule)},
			{Key: "content-type", Value: []byte("application/json")},
		},
	}
	// Buffered: the client calls the promise once, maybe after Deliver
	// returned, and a promise must never block the client's promise loop.
	acked := make(chan error, 1)
	k.client.Produce(ctx, rec, func(_ *kgo.Record, err error) { acked <- err })
	select {
	case err = <-acked:
	case <-ctx.Done():
		select {
		case err = <-acked: // answered as ctx ended: that answer counts
		default:
			return fmt.Errorf("kafka %q: no acknowledgement from the brokers for %q: %w", k.name, k.topic, ctx.Err())
		}
	}
	if err != nil {
		err = fmt.Errorf("kafka %q: cannot produce to %q: %w", k.name, k.topic, err)
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable {
			return Permanent(err)
		}
		return err
	}
	return nil
}
