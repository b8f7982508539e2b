package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/producers/ingest"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/report"
)

// maxLogRows bounds the notifications one request lists.
const maxLogRows = 1000

// alertColumns are the columns of /api/v1/alerts.
var alertColumns = []render.Column{
	{Name: "rule", Kind: render.KindText}, {Name: "kind", Kind: render.KindText}, {Name: "state", Kind: render.KindText},
	{Name: "group", Kind: render.KindText}, {Name: "threshold", Kind: render.KindText},
	{Name: "value", Kind: render.KindFloat}, {Name: "threshold_value", Kind: render.KindFloat},
	{Name: "active_at", Kind: render.KindTime, Nullable: true}, {Name: "fired_at", Kind: render.KindTime, Nullable: true},
	{Name: "resolved_at", Kind: render.KindTime, Nullable: true},
	{Name: "period_start", Kind: render.KindTime, Nullable: true}, {Name: "period_end", Kind: render.KindTime, Nullable: true},
	{Name: "summary", Kind: render.KindText},
}

// optTime is t, or null when t is zero.
func optTime(t time.Time) render.Value {
	if t.IsZero() {
		return render.Null()
	}
	return render.Time(t)
}

// alerts lists the alerts' state (by default all but inactive ones;
// state=firing for the firing ones), firing first. A tenant's key sees
// only the alerts of groups of its tenant: an alert over every tenant's
// usage (no tenant in its group) would show others' numbers.
func (s *Server) alerts(tenant string, p urlParams, _ time.Time) (compute, error) {
	state := p.Value("state")
	valid := []string{string(alerts.StateInactive), string(alerts.StatePending), string(alerts.StateFiring), string(alerts.StateResolved)}
	if state != "" && !slices.Contains(valid, state) {
		return nil, &report.ParamError{Param: "state", Msg: "invalid state: want " + strings.Join(valid, ", ")}
	}
	return func(ctx context.Context) (*render.Table, error) { return s.alertsTable(ctx, tenant, state) }, nil
}

// alertsTable is the alerts endpoint's table for a key bound to tenant,
// of the alerts in state ("": all but inactive ones).
func (s *Server) alertsTable(ctx context.Context, tenant, state string) (*render.Table, error) {
	as, err := s.opts.Alerts.LoadAlerts(ctx)
	if err != nil {
		return nil, err
	}
	as = slices.DeleteFunc(as, func(a *alerts.Alert) bool {
		if tenant != ingest.AnyTenant && a.Group["tenant"] != tenant {
			return true
		}
		if state == "" {
			return a.State == alerts.StateInactive
		}
		return string(a.State) != state
	})
	rank := map[alerts.State]int{alerts.StateFiring: 0, alerts.StatePending: 1, alerts.StateResolved: 2, alerts.StateInactive: 3}
	slices.SortStableFunc(as, func(a, b *alerts.Alert) int {
		if d := rank[a.State] - rank[b.State]; d != 0 {
			return d
		}
		return strings.Compare(a.Key(), b.Key())
	})
	t := &render.Table{Title: "alerts", Empty: "no alerts", Columns: alertColumns}
	for _, a := range as {
		var g []string
		for k, v := range a.Group {
			g = append(g, k+"="+v)
		}
		slices.Sort(g)
		t.Rows = append(t.Rows, []render.Value{render.Text(a.Rule), render.Text(string(a.Kind)), render.Text(string(a.State)),
			render.Text(strings.Join(g, ",")), render.Text(a.Threshold), render.Float(a.Value), render.Float(a.ThresholdValue),
			optTime(a.ActiveAt), optTime(a.FiredAt), optTime(a.ResolvedAt), optTime(a.PeriodStart), optTime(a.PeriodEnd),
			render.Text(a.Summary)})
	}
	return t, nil
}

// errNeedsAnyKey is a tenant's key asking for the notification log, which
// records no tenant.
var errNeedsAnyKey = errors.New("forbidden: the notification log records no tenant, so it needs a key for every tenant (*)")

// notifications lists the notification log's outcomes (delivered, dead,
// deferred) since since (default 7d), newest first, at most limit
// (default 100, at most maxLogRows). The log records no tenant, so only a "*" key may read it.
func (s *Server) notifications(tenant string, p urlParams, now time.Time) (compute, error) {
	if tenant != ingest.AnyTenant {
		return nil, errNeedsAnyKey
	}
	since := p.Value("since")
	if since == "" {
		since = "7d"
	}
	d, err := report.ParseSince(since)
	if err != nil {
		return nil, &report.ParamError{Param: "since", Msg: "invalid since " + err.Error()}
	}
	limit := 100
	if v := p.Value("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if limit = n; err != nil || limit < 1 || limit > maxLogRows {
			return nil, &report.ParamError{Param: "limit", Msg: fmt.Sprintf("invalid limit: want 1 to %d", maxLogRows)}
		}
	}
	return func(ctx context.Context) (*render.Table, error) { return s.notificationsTable(ctx, now.Add(-d), limit) }, nil
}

// notificationsTable is the notification log's outcomes since since,
// newest first, at most limit.
func (s *Server) notificationsTable(ctx context.Context, since time.Time, limit int) (*render.Table, error) {
	log, err := s.opts.Alerts.Log(ctx, since, limit)
	if err != nil {
		return nil, err
	}
	t := &render.Table{Title: "notifications", Empty: "no notifications", Columns: []render.Column{
		{Name: "at", Kind: render.KindTime}, {Name: "id", Kind: render.KindText}, {Name: "receiver", Kind: render.KindText},
		{Name: "rule", Kind: render.KindText}, {Name: "type", Kind: render.KindText}, {Name: "status", Kind: render.KindText},
		{Name: "attempts", Kind: render.KindUint}, {Name: "error", Kind: render.KindText}}}
	for _, e := range log {
		t.Rows = append(t.Rows, []render.Value{render.Time(e.At), render.Text(e.ID), render.Text(e.Receiver), render.Text(e.Rule),
			render.Text(e.Type), render.Text(e.Status), render.Uint(uint64(e.Attempts)), render.Text(e.Error)})
	}
	return t, nil
}
