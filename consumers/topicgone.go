package consumers

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTopicRecreated is returned by Run when the events topic was deleted
// (and maybe created again) under it: franz-go does not adopt a topic's
// new ID (it cannot check the new log against the old offsets), so the
// consumer would fetch nothing but UNKNOWN_TOPIC_ID errors for ever. A new
// Consumer reads the new topic.
var ErrTopicRecreated = errors.New("the events topic was deleted")

// topicGoneAfter is how long the events topic's fetches fail with
// UNKNOWN_TOPIC_ID before Run asks Kafka whether the topic is still the one
// it consumed: franz-go already hides the first five errors of a partition
// (a broker may not know a topic for a moment), and a broker behind on
// metadata answers so for a second or two.
const topicGoneAfter = 30 * time.Second

// topicGoneQuiet is how long without an UNKNOWN_TOPIC_ID ends a run of
// them: a replaced topic fails every poll (one every fetchErrorPause).
const topicGoneQuiet = 5 * time.Second

// topicLookupTimeout bounds the check of the topic's ID.
const topicLookupTimeout = 10 * time.Second

// topicGone follows a run of UNKNOWN_TOPIC_ID fetch errors of the events
// topic. Used by the poll goroutine only.
type topicGone struct {
	after, quiet time.Duration
	since, last  time.Time // the run's first and latest error; zero: no run
	// fetchedID is the topic ID franz-go fetches the topic under (from
	// the fetches; zero before the first, or from a cluster older than
	// Kafka 3.1, which does not return it).
	fetchedID [16]byte
}

// note counts an UNKNOWN_TOPIC_ID of the events topic at now.
func (g *topicGone) note(now time.Time) {
	if g.since.IsZero() {
		g.since = now
	}
	g.last = now
}

// due reports whether a run has lasted after; a run whose last error is
// quiet old ends (a passing error: leader movement, a broker catching up).
func (g *topicGone) due(now time.Time) bool {
	if g.since.IsZero() {
		return false
	}
	if now.Sub(g.last) >= g.quiet {
		g.since, g.last = time.Time{}, time.Time{}
		return false
	}
	return now.Sub(g.since) >= g.after
}

// checkTopicGone returns an error wrapping ErrTopicRecreated once the
// events topic's fetches have failed with UNKNOWN_TOPIC_ID for
// topicGoneAfter and Kafka confirms the topic is gone or has another ID
// than the one fetched; nil otherwise. A topic Kafka still holds under the
// fetched ID starts the count again; a lookup that fails is tried again
// after another topicGoneAfter.
func (c *Consumer) checkTopicGone(ctx context.Context) error {
	now := c.opts.Now()
	if !c.gone.due(now) {
		return nil
	}
	failing := now.Sub(c.gone.since).Round(time.Second)
	c.gone.since, c.gone.last = now, now // the next check, if this one decides nothing
	lctx, cancel := context.WithTimeout(ctx, topicLookupTimeout)
	defer cancel()
	td, err := c.adm.ListTopics(lctx, c.opts.Topic)
	if err != nil {
		c.log.Warn("cannot check the events topic after its fetches failed with UNKNOWN_TOPIC_ID; checking again later",
			"topic", c.opts.Topic, "failing_for", failing, "err", err)
		return nil
	}
	see := `see docs/operations.md, "Landing marks ahead of the log"`
	d, ok := td[c.opts.Topic]
	switch {
	case !ok || d.Err != nil:
		return fmt.Errorf("%w: fetches of %s have failed with UNKNOWN_TOPIC_ID for %s and Kafka no longer has it (%v); %s",
			ErrTopicRecreated, c.opts.Topic, failing, d.Err, see)
	case c.gone.fetchedID != ([16]byte{}) && [16]byte(d.ID) != c.gone.fetchedID:
		return fmt.Errorf("%w and created again: fetches of %s have failed with UNKNOWN_TOPIC_ID for %s, and its topic ID changed; restarted, the aggregator reads the new topic, but ClickHouse's landing marks are of the old one: %s",
			ErrTopicRecreated, c.opts.Topic, failing, see)
	default:
		// The same topic (or no fetched ID to compare with): a broker
		// behind; the count starts again.
		c.log.Warn("the events topic's fetches fail with UNKNOWN_TOPIC_ID, but Kafka still has the topic under the ID fetched; waiting",
			"topic", c.opts.Topic, "failing_for", failing)
		return nil
	}
}
