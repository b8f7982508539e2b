package consumers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// spool is the local last resort for DLQ records that Kafka refuses for
// good: one JSON object per line in DIR/dlq-YYYYMMDD.jsonl (UTC date),
// appended and fsynced before the consumer commits past the record. The
// directory is created on first use. Safe for concurrent use.
type spool struct {
	dir string
	mu  sync.Mutex
}

func newSpool(dir string) *spool { return &spool{dir: dir} }

// spooledRecord is one line of a spool file. Key and value are base64 (JSON
// []byte); headers keep their order and include the costpipe-dlq-* ones.
type spooledRecord struct {
	SpooledAt time.Time    `json:"spooled_at"`
	Topic     string       `json:"topic"`
	Key       []byte       `json:"key"`
	Value     []byte       `json:"value"`
	Headers   []spooledHdr `json:"headers"`
	Error     string       `json:"error"`
	Attempts  int          `json:"attempts"`
}

type spooledHdr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// write appends fs to today's spool file and syncs it. It returns the file's
// path.
func (s *spool) write(now time.Time, fs []dlqFailure) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return "", fmt.Errorf("cannot create DLQ spool directory %q: %w", s.dir, err)
	}
	path := filepath.Join(s.dir, "dlq-"+now.UTC().Format("20060102")+".jsonl")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return "", fmt.Errorf("cannot open DLQ spool file: %w", err)
	}
	var buf []byte
	for _, x := range fs {
		line, err := json.Marshal(spoolLine(now, x.rec, x.err, x.attempts))
		if err != nil {
			f.Close()
			return "", fmt.Errorf("cannot encode a DLQ record for the spool: %w", err)
		}
		buf = append(append(buf, line...), '\n')
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return "", fmt.Errorf("cannot write DLQ spool file %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("cannot sync DLQ spool file %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("cannot close DLQ spool file %q: %w", path, err)
	}
	return path, nil
}

func spoolLine(now time.Time, r *kgo.Record, err error, attempts int) spooledRecord {
	hs := make([]spooledHdr, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = spooledHdr{Key: h.Key, Value: string(h.Value)}
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return spooledRecord{SpooledAt: now.UTC(), Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: hs, Error: msg, Attempts: attempts}
}
