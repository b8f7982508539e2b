package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CursorTopicSuffix names a DLQ topic's default cursor topic: the DLQ
// topic's name followed by it (costpipe.events.dlq.replay-cursors).
const CursorTopicSuffix = ".replay-cursors"

// The replay cursors are kept twice: as the committed offsets of the
// groups PREFIX.REASON, which tools such as kafka-consumer-groups show,
// and in the cursor topic, a compacted topic with one record per DLQ
// topic, group and partition whose latest value is the next offset of
// that group to send. Kafka drops a group's offsets
// offsets.retention.minutes (7 days by default) after its last commit; a
// compacted topic keeps the latest record of every key for good. A replay
// starts each cursor at the greater of the two.

// cursorRecord is the value of a record of the cursor topic.
type cursorRecord struct {
	// Topic is the DLQ topic and TopicID its Kafka topic ID ("" when the
	// broker has none): a cursor of a topic since deleted and created
	// again under the same name is not this topic's.
	Topic   string `json:"topic"`
	TopicID string `json:"topic_id,omitempty"`
	// Group is the reason's group, PREFIX.REASON.
	Group     string `json:"group"`
	Partition int32  `json:"partition"`
	// Next is the next offset of Partition this group sends.
	Next int64 `json:"next"`
	// At is when the cursor moved there, for people reading the topic.
	At time.Time `json:"at"`
}

// key is the record's key, one per topic, group and partition, so that
// compaction keeps each one's latest cursor.
func (c *cursorRecord) key() []byte {
	return fmt.Appendf(nil, "%s/%d/%s", c.Topic, c.Partition, c.Group)
}

// dlqTopicID is topic's Kafka topic ID as cursor records hold it ("" when
// the broker has none); it fails with ErrNoDLQTopic when topic does not
// exist.
func dlqTopicID(ctx context.Context, adm *kadm.Client, topic string) (string, error) {
	ts, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return "", fmt.Errorf("cannot look up topic %s: %w", topic, err)
	}
	d, ok := ts[topic]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrNoDLQTopic, topic)
	}
	if d.Err != nil {
		return "", noTopic(d.Err, topic, "cannot look up topic "+topic)
	}
	if d.ID == (kadm.TopicID{}) {
		return "", nil
	}
	return d.ID.String(), nil
}

// savedCursors are the cursors the cursor topic holds for one DLQ topic.
type savedCursors struct {
	// next[group][partition] is the group's next offset to send.
	next map[string]map[int32]int64
	// exists is set when the cursor topic exists.
	exists bool
}

// loadCursors reads the cursor topic whole and returns the cursors of
// topic's groups and partitions, leaving out those of a topic with
// another ID. Cursors only move forward, so the greatest of a key's
// records is its cursor, whatever partition of the cursor topic each is
// on. A cursor topic that does not exist holds none.
func loadCursors(ctx context.Context, base []kgo.Opt, adm *kadm.Client, cursorTopic, topic, topicID string) (savedCursors, error) {
	out := savedCursors{next: map[string]map[int32]int64{}}
	ranges, err := dlqRanges(ctx, adm, cursorTopic, time.Time{}, nil)
	if errors.Is(err, ErrNoDLQTopic) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("cannot read the replay cursors in %s: %w", cursorTopic, err)
	}
	out.exists = true
	err = readDLQ(ctx, base, cursorTopic, ranges, func(_ int32, recs []*kgo.Record) error {
		for _, r := range recs {
			var c cursorRecord
			if r.Value == nil { // a tombstone
				continue
			}
			if err := json.Unmarshal(r.Value, &c); err != nil {
				return fmt.Errorf("cannot read the replay cursor at %s partition %d offset %d: %w", cursorTopic, r.Partition, r.Offset, err)
			}
			if c.Topic != topic || c.TopicID != "" && topicID != "" && c.TopicID != topicID {
				continue
			}
			if out.next[c.Group] == nil {
				out.next[c.Group] = map[int32]int64{}
			}
			if n, ok := out.next[c.Group][c.Partition]; !ok || c.Next > n {
				out.next[c.Group][c.Partition] = c.Next
			}
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("cannot read the replay cursors in %s: %w", cursorTopic, err)
	}
	return out, nil
}

// ensureCursorTopic creates the cursor topic (one partition, compacted)
// when it does not exist (exists), and refuses one whose cleanup policy
// deletes records: its cursors would expire as group offsets do. A
// configuration it is not allowed to read is a warning (returned), not a
// failure.
func ensureCursorTopic(ctx context.Context, adm *kadm.Client, topic string, exists bool) (warning string, err error) {
	if !exists {
		compact := "compact"
		resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) { // or another replay just made it
			return "", nil
		}
		return "", fmt.Errorf("cannot create the replay cursor topic %s (create it with one partition and cleanup.policy=compact, or name another with --cursor-topic): %w", topic, err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	var rc kadm.ResourceConfig
	if err == nil {
		rc, err = rcs.On(topic, nil)
	}
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Sprintf("cannot read the configuration of the replay cursor topic %s (%v): make sure its cleanup.policy is compact, or its cursors expire with its retention", topic, err), nil
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil && !compactOnly(*c.Value) {
			return "", fmt.Errorf("the replay cursor topic %s has cleanup.policy=%s: its cursors would expire with its retention; set cleanup.policy=compact on it, or name another topic with --cursor-topic", topic, *c.Value)
		}
	}
	return "", nil
}

// compactOnly reports whether a cleanup.policy keeps every key's latest
// record for good: compact, without delete.
func compactOnly(policy string) bool {
	compact := false
	for _, p := range strings.Split(policy, ",") {
		switch strings.TrimSpace(p) {
		case "compact":
			compact = true
		case "delete":
			return false
		}
	}
	return compact
}

// saveCursors writes the cursors cs to the cursor topic and waits for
// Kafka to acknowledge them.
func saveCursors(ctx context.Context, pr *kgo.Client, cursorTopic string, cs []cursorRecord) error {
	recs := make([]*kgo.Record, 0, len(cs))
	for i := range cs {
		v, err := json.Marshal(&cs[i])
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: cursorTopic, Key: cs[i].key(), Value: v, Partition: 0})
	}
	if err := pr.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("cannot write the replay cursors to %s: %w", cursorTopic, err)
	}
	return nil
}
