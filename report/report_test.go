package report

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// mapParams is Params from a map, named as a URL's query names them.
type mapParams map[string][]string

func (m mapParams) Value(name string) string {
	if v := m[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}
func (m mapParams) Values(name string) []string { return m[name] }
func (m mapParams) IsSet(name string) bool      { _, ok := m[name]; return ok }
func (m mapParams) Name(name string) string     { return name }

var testNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// TestParseTimeRangeBeforeEpoch: a range from before 1970, Go's zero time
// included, starts in 1970 (no row is older); 0001-01-01 read as no start
// and failed with "usage query needs a start time".
func TestParseTimeRangeBeforeEpoch(t *testing.T) {
	for _, from := range []string{"0001-01-01", "0001-01-01T00:00:00Z", "1960-05-01"} {
		f, to, err := ParseTimeRange(mapParams{"from": {from}}, testNow)
		if err != nil || !f.Equal(time.Unix(0, 0)) || !to.Equal(testNow) {
			t.Errorf("from %s: [%s, %s), %v; want [1970-01-01, now)", from, f, to, err)
		}
	}
	_, _, err := ParseTimeRange(mapParams{"from": {"1960-01-01"}, "to": {"1969-01-01"}}, testNow)
	var pe *ParamError
	if !errors.As(err, &pe) || pe.Param != "from" || !strings.Contains(err.Error(), "empty range") {
		t.Errorf("a range before 1970: %v, want an empty range", err)
	}
}

// FuzzParseUsage: no parameters make the parsers panic; an accepted range
// is non-empty and starts in 1970 or later; a refusal is a *ParamError.
func FuzzParseUsage(f *testing.F) {
	f.Add("2026-01-01", "2026-02-01", "", "model,tenant", "tenant=acme", "auto", "1h", "cost")
	f.Add("", "", "7d", "", "", "", "1d", "tokens")
	f.Add("0001-01-01", "", "", "nope", "x", "hour", "0s", "")
	f.Fuzz(func(t *testing.T, from, to, since, by, where, gran, step, metric string) {
		p := mapParams{}
		for k, v := range map[string]string{"from": from, "to": to, "since": since, "by": by, "where": where,
			"granularity": gran, "step": step, "metric": metric} {
			if v != "" {
				p[k] = []string{v}
			}
		}
		check := func(what string, r Range, err error) {
			if err != nil {
				var pe *ParamError
				if !errors.As(err, &pe) {
					t.Errorf("%s: %v is not a *ParamError", what, err)
				}
				return
			}
			if !r.From.Before(r.To) || r.From.Before(time.Unix(0, 0)) {
				t.Errorf("%s: accepted [%s, %s)", what, r.From, r.To)
			}
		}
		u, err := ParseUsage(p, testNow)
		check("usage", u.Range, err)
		s, err := ParseSeries(p, testNow)
		check("series", s.Range, err)
		tp, err := ParseTop(p, testNow, 100)
		check("top", tp.Range, err)
		ParseGrowth(p, testNow)
		ParseForecast(p, testNow)
	})
}

// TestParseTimeRangeWholeMinutes: the range returned is the one the
// rollups answer, both bounds rounded up to a minute, so titles and JSON
// print what was counted; a range inside one minute is refused.
func TestParseTimeRangeWholeMinutes(t *testing.T) {
	f, to, err := ParseTimeRange(mapParams{"from": {"2026-11-19T14:59:30Z"}, "to": {"2026-11-19T15:00:30Z"}}, testNow)
	if err != nil || f != time.Date(2026, 11, 19, 15, 0, 0, 0, time.UTC) || to != time.Date(2026, 11, 19, 15, 1, 0, 0, time.UTC) {
		t.Errorf("[%s, %s), %v; want [15:00, 15:01)", f, to, err)
	}
	f, to, err = ParseTimeRange(mapParams{"since": {"24h"}}, testNow.Add(42*time.Second))
	if err != nil || f != testNow.Add(-23*time.Hour-59*time.Minute) || to != testNow.Add(time.Minute) {
		t.Errorf("--since 24h at 12:00:42: [%s, %s), %v; want [12:01 the day before, 12:01)", f, to, err)
	}
	_, _, err = ParseTimeRange(mapParams{"from": {"2026-11-19T14:59:30Z"}, "to": {"2026-11-19T14:59:50Z"}}, testNow)
	if err == nil || !strings.Contains(err.Error(), "are in the same minute, and the rollups hold whole minutes") {
		t.Errorf("a range inside a minute: %v", err)
	}
}

// TestTrendAtDateInZone: a date given as at is the start of that day in
// tz, so a forecast at=2026-04-01 tz=America/New_York is for April there
// (it read as UTC midnight, 20:00 on March 31 in New York: March).
func TestTrendAtDateInZone(t *testing.T) {
	f, err := ParseForecast(mapParams{"at": {"2026-04-01"}, "tz": {"America/New_York"}}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	if want := time.Date(2026, 4, 1, 0, 0, 0, 0, ny); !f.At.Equal(want) {
		t.Errorf("at = %s, want %s", f.At, want)
	}
	if start, _ := f.Period.Bounds(f.At, f.Loc); start.Month() != time.April {
		t.Errorf("the period starts %s, want April", start)
	}
	// RFC 3339 stays the instant it names.
	g, err := ParseGrowth(mapParams{"at": {"2026-04-01T02:00:00Z"}, "tz": {"America/New_York"}}, testNow)
	if err != nil || !g.At.Equal(time.Date(2026, 4, 1, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("at RFC 3339: %s, %v", g.At, err)
	}
}
