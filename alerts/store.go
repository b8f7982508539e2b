package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/costpipe/costpipe/warehouse"
)

// Store keeps alert state, silences and the notification log in the
// ClickHouse tables of migration 0006, so a restarted or second evaluator
// continues where the first left off. Safe for concurrent use.
type Store struct {
	w   *warehouse.Warehouse
	now func() time.Time
	// slowLogReads and slowLogWrites, set by tests, are added to every
	// query of and insert into the notification log (a server under load);
	// beforeLogWrite, when set, runs before each insert into the log and
	// fails it with its error.
	slowLogReads, slowLogWrites time.Duration
	beforeLogWrite              func() error
}

// maxStoredRows bounds what one read of the state or log returns.
const maxStoredRows = 200000

// NewStore returns a store over w's database (migrated to 0006); now
// stamps versions and silences.
func NewStore(w *warehouse.Warehouse, now func() time.Time) *Store {
	return &Store{w: w, now: now}
}

func (s *Store) table(name string) string { return s.w.Database() + "." + name }

// MinTime and MaxTime bound the times the alerts tables store correctly.
// A DateTime column holds 1970-01-01T00:00:00Z to 2106-02-07T06:28:15Z and
// wraps what lies outside (an end in 2141 is stored as 2004), and
// ClickHouse 18.16's toDate and toStartOfHour wrap to 1970 on its last day,
// so the last time taken is 2106-02-06T00:00:00Z, as in the warehouse's
// ranges. A silence outside them is refused (Silence.Validate); the state's
// and the log's times are clamped to them.
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Unix(4294857600, 0).UTC()
)

// dt is t for a DateTime column, clamped to MinTime..MaxTime: the zero
// time is 1970-01-01.
func dt(t time.Time) time.Time {
	switch {
	case t.IsZero() || t.Before(MinTime):
		return MinTime
	case t.After(MaxTime):
		return MaxTime
	}
	return t.UTC()
}

// fromDT undoes dt.
func fromDT(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Time{}
	}
	return t.UTC()
}

// LoadAlerts reads the newest state of every alert, the most recently
// active first: beyond maxStoredRows, the alerts inactive the longest are
// the ones left out.
func (s *Store) LoadAlerts(ctx context.Context) ([]*Alert, error) {
	rows, err := s.w.Conn().Query(ctx, `SELECT rule, kind, group_json, threshold, state, active_at, fired_at, last_active, resolved_at,
		period_start, period_end, value, threshold_value, summary, contributors
		FROM `+s.table("alerts_state")+` FINAL ORDER BY last_active DESC LIMIT `+fmt.Sprint(maxStoredRows))
	if err != nil {
		return nil, fmt.Errorf("cannot read alert state: %w", err)
	}
	defer rows.Close()
	var out []*Alert
	for rows.Next() {
		a := &Alert{}
		var kind, g, state, contrib string
		var act, fired, last, res, ps, pe time.Time
		if err := rows.Scan(&a.Rule, &kind, &g, &a.Threshold, &state, &act, &fired, &last, &res, &ps, &pe,
			&a.Value, &a.ThresholdValue, &a.Summary, &contrib); err != nil {
			return nil, fmt.Errorf("cannot read alert state: %w", err)
		}
		a.Kind, a.State = Kind(kind), State(state)
		a.ActiveAt, a.FiredAt, a.LastActive, a.ResolvedAt = fromDT(act), fromDT(fired), fromDT(last), fromDT(res)
		a.PeriodStart, a.PeriodEnd = fromDT(ps), fromDT(pe)
		if err := json.Unmarshal([]byte(g), &a.Group); err != nil {
			return nil, fmt.Errorf("cannot read the group %q of alert %q: %w", g, a.Rule, err)
		}
		if contrib != "" {
			json.Unmarshal([]byte(contrib), &a.Contributors)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SaveAlerts writes the current state of as (one block).
func (s *Store) SaveAlerts(ctx context.Context, replica string, as []*Alert) error {
	if len(as) == 0 {
		return nil
	}
	b, err := s.w.Conn().PrepareBatch(ctx, "INSERT INTO "+s.table("alerts_state")+
		" (rule, instance, kind, group_json, threshold, state, active_at, fired_at, last_active, resolved_at, period_start, period_end, value, threshold_value, summary, contributors, replica, version)")
	if err != nil {
		return fmt.Errorf("cannot save alert state: %w", err)
	}
	version := uint64(s.now().UnixNano())
	for _, a := range as {
		g, _ := json.Marshal(orEmpty(a.Group))
		c := ""
		if len(a.Contributors) > 0 {
			cb, _ := json.Marshal(a.Contributors)
			c = string(cb)
		}
		if err := b.Append(a.Rule, groupKey(a.Group)+"\x00"+a.Threshold, string(a.Kind), string(g), a.Threshold, string(a.State),
			dt(a.ActiveAt), dt(a.FiredAt), dt(a.LastActive), dt(a.ResolvedAt), dt(a.PeriodStart), dt(a.PeriodEnd),
			a.Value, a.ThresholdValue, a.Summary, c, replica, version); err != nil {
			b.Abort()
			return fmt.Errorf("cannot save alert state: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot save alert state: %w", err)
	}
	return nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// AddSilence stores a silence (a new version of it when the ID exists).
// It refuses one that Silence.Validate refuses.
func (s *Store) AddSilence(ctx context.Context, sil Silence) error {
	if err := sil.Validate(); err != nil {
		return fmt.Errorf("cannot store silence %s: %w", sil.ID, err)
	}
	m, _ := json.Marshal(sil.Matchers)
	b, err := s.w.Conn().PrepareBatch(ctx, "INSERT INTO "+s.table("alerts_silences")+" (id, matchers, starts_at, ends_at, created_by, comment, version)")
	if err == nil {
		if err = b.Append(sil.ID, string(m), dt(sil.StartsAt), dt(sil.EndsAt), sil.CreatedBy, sil.Comment, uint64(s.now().UnixNano())); err != nil {
			b.Abort()
		} else {
			err = b.Send()
		}
	}
	if err != nil {
		return fmt.Errorf("cannot store silence %s: %w", sil.ID, err)
	}
	return nil
}

// Silences returns the silences, the expired ones only with all.
func (s *Store) Silences(ctx context.Context, all bool) ([]Silence, error) {
	rows, err := s.w.Conn().Query(ctx, "SELECT id, matchers, starts_at, ends_at, created_by, comment FROM "+s.table("alerts_silences")+
		" FINAL ORDER BY ends_at DESC, id LIMIT "+fmt.Sprint(maxStoredRows))
	if err != nil {
		return nil, fmt.Errorf("cannot read silences: %w", err)
	}
	defer rows.Close()
	now := s.now()
	var out []Silence
	for rows.Next() {
		var sil Silence
		var m string
		if err := rows.Scan(&sil.ID, &m, &sil.StartsAt, &sil.EndsAt, &sil.CreatedBy, &sil.Comment); err != nil {
			return nil, fmt.Errorf("cannot read silences: %w", err)
		}
		if err := json.Unmarshal([]byte(m), &sil.Matchers); err != nil {
			return nil, fmt.Errorf("cannot read the matchers of silence %s: %w", sil.ID, err)
		}
		if all || now.Before(sil.EndsAt) {
			out = append(out, sil)
		}
	}
	// Read latest-ending first, so that a limit drops the long-expired
	// ones; returned in order of start.
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].StartsAt.Equal(out[j].StartsAt) {
			return out[i].StartsAt.Before(out[j].StartsAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, rows.Err()
}

// ExpireSilence ends silence id now; it fails when there is no such
// silence.
func (s *Store) ExpireSilence(ctx context.Context, id string) error {
	ss, err := s.Silences(ctx, true)
	if err != nil {
		return err
	}
	for _, sil := range ss {
		if sil.ID == id {
			if now := s.now(); now.Before(sil.EndsAt) {
				sil.EndsAt = now
				if sil.StartsAt.After(now) {
					sil.StartsAt = now
				}
			}
			return s.AddSilence(ctx, sil)
		}
	}
	return fmt.Errorf("no silence %q (see costpipe alerts silence list --all)", id)
}

// Log statuses of alerts_notifications.
const (
	logSending   = "sending"
	logDelivered = "delivered"
	logDead      = "dead"
	logReleased  = "released"
	logDeferred  = "deferred" // a round of attempts failed; retried later
)

// logRow is one row of the notification log.
type logRow struct {
	ID, Receiver string
	Round        uint32
	Status       string
	Replica      string
	Nonce        uint64
	At           time.Time
	Rule, Type   string
	Group        map[string]string
	Attempts     uint32
	Error        string
}

// logRows reads the log rows of ids.
func (s *Store) logRows(ctx context.Context, ids []string) ([]logRow, error) {
	var out []logRow
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		time.Sleep(s.slowLogReads)
		rows, err := s.w.Conn().Query(ctx, "SELECT id, receiver, round, status, replica, nonce, at, rule, type, attempts, error FROM "+
			s.table("alerts_notifications")+" WHERE id IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+") LIMIT "+fmt.Sprint(maxStoredRows), args...)
		if err != nil {
			return nil, fmt.Errorf("cannot read the notification log: %w", err)
		}
		for rows.Next() {
			var r logRow
			if err := rows.Scan(&r.ID, &r.Receiver, &r.Round, &r.Status, &r.Replica, &r.Nonce, &r.At, &r.Rule, &r.Type, &r.Attempts, &r.Error); err != nil {
				rows.Close()
				return nil, fmt.Errorf("cannot read the notification log: %w", err)
			}
			out = append(out, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot read the notification log: %w", err)
		}
	}
	return out, nil
}

// appendLog appends rows to the log (one block).
func (s *Store) appendLog(ctx context.Context, rows []logRow) error {
	if len(rows) == 0 {
		return nil
	}
	time.Sleep(s.slowLogWrites)
	if s.beforeLogWrite != nil {
		if err := s.beforeLogWrite(); err != nil {
			return fmt.Errorf("cannot write the notification log: %w", err)
		}
	}
	b, err := s.w.Conn().PrepareBatch(ctx, "INSERT INTO "+s.table("alerts_notifications")+
		" (id, receiver, round, status, replica, nonce, at, rule, type, group_json, attempts, error)")
	if err != nil {
		return fmt.Errorf("cannot write the notification log: %w", err)
	}
	for _, r := range rows {
		g, _ := json.Marshal(orEmpty(r.Group))
		if err := b.Append(r.ID, r.Receiver, r.Round, r.Status, r.Replica, r.Nonce, dt(r.At), r.Rule, r.Type, string(g), r.Attempts, r.Error); err != nil {
			b.Abort()
			return fmt.Errorf("cannot write the notification log: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot write the notification log: %w", err)
	}
	return nil
}

// LogEntry is one notification's outcome at one receiver, for reports.
type LogEntry struct {
	ID, Receiver, Rule, Type, Status, Replica string
	At                                        time.Time
	Attempts                                  uint32
	Error                                     string
}

// Log returns the notification log's outcome rows (delivered, dead, and
// deferred: a round that failed and is retried) since from, newest first,
// at most limit.
func (s *Store) Log(ctx context.Context, from time.Time, limit int) ([]LogEntry, error) {
	rows, err := s.w.Conn().Query(ctx, "SELECT id, receiver, rule, type, status, replica, at, attempts, error FROM "+s.table("alerts_notifications")+
		" WHERE at >= ? AND status IN ('delivered', 'dead', 'deferred') ORDER BY at DESC, id LIMIT ?", dt(from), uint64(limit))
	if err != nil {
		return nil, fmt.Errorf("cannot read the notification log: %w", err)
	}
	defer rows.Close()
	var out []LogEntry
	for rows.Next() {
		var e LogEntry
		if err := rows.Scan(&e.ID, &e.Receiver, &e.Rule, &e.Type, &e.Status, &e.Replica, &e.At, &e.Attempts, &e.Error); err != nil {
			return nil, fmt.Errorf("cannot read the notification log: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
