package consumers

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/costpipe/costpipe/internal/flock"
)

// spool is the local last resort for DLQ records that Kafka refuses for
// good: one JSON object per line (spooledRecord) in DIR/dlq-YYYYMMDD.jsonl
// (UTC date), appended and fsynced before the consumer commits past the
// record. A write that fails is undone (the file is truncated back), so a
// file holds whole lines only. New checks the directory (CheckSpoolDir).
// Safe for concurrent use.
type spool struct {
	dir string
	mu  sync.Mutex
	// open opens a spool file for appending (a test's hook).
	open func(path string) (spoolFile, error)
}

// spoolFile is what the spool needs of an *os.File.
type spoolFile interface {
	io.Writer
	io.ReaderAt
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

func newSpool(dir string) *spool {
	return &spool{dir: dir, open: func(path string) (spoolFile, error) {
		return os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o640)
	}}
}

// spoolFormat is the value of the "v" field of the lines this version
// writes. Version 2 encodes header values in base64, like key and value;
// lines without "v" (version 1) held them as text, binary bytes replaced by
// U+FFFD.
const spoolFormat = 2

// spooledRecord is one line of a spool file. Key, value and header values
// are base64 (JSON []byte; null when absent); headers keep their order and
// include the costpipe-dlq-* ones. The source fields and the reason repeat
// those headers in clear, for reading the file.
type spooledRecord struct {
	Version         int          `json:"v"`
	SpooledAt       time.Time    `json:"spooled_at"`
	Topic           string       `json:"topic"`
	Key             []byte       `json:"key"`
	Value           []byte       `json:"value"`
	Headers         []spooledHdr `json:"headers"`
	SourceTopic     string       `json:"source_topic"`
	SourcePartition int32        `json:"source_partition"`
	SourceOffset    int64        `json:"source_offset"`
	Reason          string       `json:"reason"`
	Error           string       `json:"error"`
	Attempts        int          `json:"attempts"`
}

type spooledHdr struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// CheckSpoolDir creates the DLQ spool directory dir (mode 0750) if needed
// and checks that a file can be written in it (a test file, removed
// again), so that a directory the process cannot write fails at the start
// rather than at the first record Kafka refuses. The error names the
// directory and the cause.
func CheckSpoolDir(dir string) error {
	fail := func(err error) error {
		return fmt.Errorf("DLQ spool directory %q (--dlq-spool) is not writable: %w; create it writable by this process, or point --dlq-spool elsewhere", dir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(dir, ".costpipe-write-check-*")
	if err != nil {
		return fail(err)
	}
	_, werr := f.Write([]byte("costpipe\n"))
	if err := f.Close(); werr == nil {
		werr = err
	}
	if err := os.Remove(f.Name()); werr == nil {
		werr = err
	}
	if werr != nil {
		return fail(werr)
	}
	return nil
}

// usage returns the bytes of the regular files in the spool directory.
func (s *spool) usage() (int64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		n += fi.Size()
	}
	return n, nil
}

// write appends fs to today's spool file and syncs it. It returns the file's
// path. On error the file is as it was (truncated back to its size before
// the write; the error says when that failed too).
func (s *spool) write(now time.Time, fs []dlqFailure) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf []byte
	for _, x := range fs {
		line, err := json.Marshal(spoolLine(now, x))
		if err != nil {
			return "", fmt.Errorf("cannot encode a DLQ record for the spool: %w", err)
		}
		buf = append(append(buf, line...), '\n')
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return "", fmt.Errorf("cannot create DLQ spool directory %q: %w", s.dir, err)
	}
	path := filepath.Join(s.dir, "dlq-"+now.UTC().Format("20060102")+".jsonl")
	f, fi, err := s.openLocked(path)
	if err != nil {
		return "", err
	}
	size := fi.Size()
	if size > 0 {
		// A process killed in the middle of an append left part of a line:
		// it ends here, as a line of its own that unspool reports, rather
		// than running into this record.
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err == nil && last[0] != '\n' {
			buf = append([]byte{'\n'}, buf...)
		}
	}
	undo := func(err error) error {
		// A short write (a full disk) left part of a line, which the next
		// append would continue.
		if terr := f.Truncate(size); terr != nil {
			err = fmt.Errorf("%w; and cannot truncate it back to %d bytes (its last line may be incomplete: remove it before re-producing the file): %v", err, size, terr)
		}
		f.Close()
		return err
	}
	if _, err := f.Write(buf); err != nil {
		return "", undo(fmt.Errorf("cannot write DLQ spool file %q: %w", path, err))
	}
	if err := f.Sync(); err != nil {
		return "", undo(fmt.Errorf("cannot sync DLQ spool file %q: %w", path, err))
	}
	if err := f.Close(); err != nil {
		err = fmt.Errorf("cannot close DLQ spool file %q: %w", path, err)
		if terr := os.Truncate(path, size); terr != nil {
			err = fmt.Errorf("%w; and cannot truncate it back to %d bytes (its last lines may be written twice): %v", err, size, terr)
		}
		return "", err
	}
	return path, nil
}

// openLocked opens the spool file path for appending, locked against
// `costpipe dlq unspool`, which renames a file away under the lock: a file
// that is no longer at path once locked is closed and path opened again.
// The lock goes with the file's Close.
func (s *spool) openLocked(path string) (spoolFile, os.FileInfo, error) {
	for range 10 {
		f, err := s.open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot open DLQ spool file: %w", err)
		}
		if osf, ok := f.(*os.File); ok {
			if err := flock.Lock(osf); err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("cannot lock DLQ spool file %q: %w", path, err)
			}
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("cannot open DLQ spool file %q: %w", path, err)
		}
		if now, err := os.Stat(path); err == nil && os.SameFile(fi, now) {
			return f, fi, nil
		}
		f.Close() // unspooled meanwhile: a new file
	}
	return nil, nil, fmt.Errorf("cannot open DLQ spool file %q: it keeps being renamed away", path)
}

func spoolLine(now time.Time, x dlqFailure) spooledRecord {
	r := x.rec
	hs := make([]spooledHdr, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = spooledHdr{Key: h.Key, Value: h.Value}
	}
	msg := ""
	if x.err != nil {
		msg = x.err.Error()
	}
	return spooledRecord{Version: spoolFormat, SpooledAt: now.UTC(), Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: hs,
		SourceTopic: x.src.topic, SourcePartition: x.src.pos.part, SourceOffset: x.src.pos.off,
		Reason: x.src.reason, Error: msg, Attempts: x.attempts}
}
