package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

func TestPricesDiff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old, new := filepath.Join(dir, "old.yaml"), filepath.Join(dir, "new.yaml")
	os.WriteFile(old, []byte(`models:
  - provider: openai
    model: gpt-5
    prices:
      - from: 2025-01-01
        input: "1.25"
        output: "10"
        service_tiers:
          flex: { input: "0.625", output: "5" }
  - provider: openai
    model: gone
    prices:
      - from: 2025-01-01
        input: "1"
        output: "2"
  - provider: openai
    model: same
    prices:
      - from: 2025-01-01
        input: "1"
        output: "2"
`), 0o644)
	os.WriteFile(new, []byte(`models:
  - provider: openai
    model: gpt-5
    prices:
      - from: 2025-01-01
        input: "1.25"
        output: "10"
        tiers:
          - above: 272000
            input: "2.50"
        service_tiers:
          flex: { input: "0.5", output: "5" }
  - provider: openai
    model: added
    prices:
      - from: 2025-01-01
        input: "3"
        output: "4"
  - provider: openai
    model: same
    prices:
      - from: 2025-01-01
        input: "1"
        output: "2"
`), 0o644)
	r := run(t, "", nil, "prices", "diff", "--format", "json", old, new)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rows []diffRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	got := map[string]diffRow{}
	for _, d := range rows {
		got[d.Change+" "+d.Model+" "+d.Field] = d
	}
	for key, want := range map[string]diffRow{
		"added added ":                         {New: "input 3.00, output 4.00"},
		"removed gone ":                        {Old: "input 1.00, output 2.00"},
		"changed gpt-5 flex input":             {Old: "0.625", New: "0.50", Percent: "-20.0"},
		"changed gpt-5 tier>272000 input":      {New: "2.50"},
		"changed gpt-5 flex tier>272000 input": {New: "2.50"},
	} {
		d, ok := got[key]
		if !ok {
			t.Errorf("missing %q in %s", key, r.stdout)
			continue
		}
		if d.Old != want.Old || d.New != want.New || d.Percent != want.Percent {
			t.Errorf("%s: %+v, want old %q new %q pct %q", key, d, want.Old, want.New, want.Percent)
		}
	}
	for k := range got {
		if strings.Contains(k, " same ") {
			t.Errorf("unchanged entry listed: %s", k)
		}
	}
	r = run(t, "", nil, "prices", "diff", "--exit-code", old, new)
	if r.code != 1 || !strings.Contains(r.stdout, "1 added, 1 removed, 1 changed, 1 unchanged") {
		t.Errorf("--exit-code: exit %d, stdout %s", r.code, r.stdout)
	}
	if r := run(t, "", nil, "prices", "diff", "--exit-code", old, old); r.code != 0 {
		t.Errorf("same catalog: exit %d, %s", r.code, r.stdout)
	}
	if r := run(t, "", nil, "prices", "diff", old); r.code != 2 || !strings.Contains(r.stderr, "usage: costpipe prices diff OLD NEW") {
		t.Errorf("one argument: exit %d, %s", r.code, r.stderr)
	}
	// A corrected past price, alike today: listed, and --exit-code sees it
	// (it printed "0 changed, 1 unchanged" and exited 0).
	h1, h2 := filepath.Join(dir, "h1.yaml"), filepath.Join(dir, "h2.yaml")
	hist := "models:\n  - provider: p\n    model: m\n    prices:\n      - {from: 2026-01-01, input: \"%s\", output: \"2\"}\n      - {from: 2026-06-01, input: \"3\", output: \"4\"}\n"
	os.WriteFile(h1, []byte(fmt.Sprintf(hist, "1")), 0o644)
	os.WriteFile(h2, []byte(fmt.Sprintf(hist, "1.5")), 0o644)
	r = run(t, "", nil, "prices", "diff", "--exit-code", "--at", "2026-07-01", h1, h2)
	if r.code != 1 || !strings.Contains(r.stdout, "other period") || !strings.Contains(r.stdout, "from 2026-01-01T00:00:00Z") ||
		!strings.Contains(r.stdout, "0 changed, 1 unchanged") || !strings.Contains(r.stdout, "1 alike at 2026-07-01 price differently in another period") {
		t.Errorf("corrected past price: exit %d\n%s", r.code, r.stdout)
	}
	if r := run(t, "", nil, "prices", "diff", "--exit-code", "--at", "2026-07-01", h1, h1); r.code != 0 || strings.Contains(r.stdout, "other period") {
		t.Errorf("same history: exit %d\n%s", r.code, r.stdout)
	}
}

// diffCatalogs reports a tenant's discount changed, added or removed, and
// a model only one catalog has whose prices all start after --at: before,
// both showed "0 changed" (and --exit-code 0).
func TestPricesDiffTenantsAndLaterModels(t *testing.T) {
	t.Parallel()
	parse := func(s string) *pricing.Catalog {
		t.Helper()
		c, err := pricing.Parse("c.yaml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	model := "  - provider: openai\n    model: m\n    prices:\n      - {from: \"2025-01-01\", input: \"1\", output: \"2\"}\n"
	oldCat := parse("models:\n" + model + "  - provider: openai\n    model: retired\n    prices:\n      - {from: \"2027-01-01\", input: \"1\", output: \"2\"}\n" +
		"tenants:\n  acme: { discount: \"0.10\" }\n  gone: { discount: \"0.05\" }\n")
	newCat := parse("models:\n" + model + "  - provider: openai\n    model: next\n    prices:\n      - {from: \"2027-01-01\", input: \"3\", output: \"4\"}\n" +
		"tenants:\n  acme: { discount: \"0.20\" }\n  new: { discount: \"0.15\" }\n")
	rows, counts := diffCatalogs(oldCat, newCat, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	got := map[string]diffRow{}
	for _, r := range rows {
		got[r.Change+" "+r.Provider+" "+r.Model+" "+r.Field] = r
	}
	for _, k := range []string{
		"changed (tenant) acme discount", "changed (tenant) gone discount", "changed (tenant) new discount",
		"other period openai next from 2027-01-01T00:00:00Z", "other period openai retired from 2027-01-01T00:00:00Z",
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("no row %q; rows %+v", k, rows)
		}
	}
	if r := got["changed (tenant) acme discount"]; r.Old != "0.1" || r.New != "0.2" {
		t.Errorf("acme: %+v, want 0.1 → 0.2", r)
	}
	if counts[2] != 3 || counts[4] != 2 {
		t.Errorf("counts %v, want 3 changed (the tenants) and 2 in another period", counts)
	}
}

// TestPricesDiffRegexOrder: two regexes that keep their prices but trade
// places price gpt-4o at the other's rates (the first in file order wins):
// the diff reports both as reordered and --exit-code fails; the same
// regexes in the same order are no change.
func TestPricesDiffRegexOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	entry := func(re, input string) string {
		return "  - provider: openai\n    match: '" + re + "'\n    prices:\n      - from: 2025-01-01\n        input: \"" + input + "\"\n        output: \"8\"\n"
	}
	old, new := filepath.Join(dir, "old.yaml"), filepath.Join(dir, "new.yaml")
	os.WriteFile(old, []byte("models:\n"+entry("^gpt-4", "1")+entry("^gpt-4o", "2")), 0o644)
	os.WriteFile(new, []byte("models:\n"+entry("^gpt-4o", "2")+entry("^gpt-4", "1")), 0o644)
	r := run(t, "", nil, "prices", "diff", "--format", "json", "--exit-code", old, new)
	var rows []diffRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	want := []diffRow{
		{Change: "reordered", Provider: "openai", Model: "~^gpt-4", Field: "regex order", Old: "1", New: "2"},
		{Change: "reordered", Provider: "openai", Model: "~^gpt-4o", Field: "regex order", Old: "2", New: "1"},
	}
	if r.code != 1 || !slices.Equal(rows, want) {
		t.Errorf("exit %d, rows %+v; want exit 1 and %+v", r.code, rows, want)
	}
	r = run(t, "", nil, "prices", "diff", "--exit-code", old, old)
	if r.code != 0 || !strings.Contains(r.stdout, "0 added, 0 removed, 0 changed, 2 unchanged") {
		t.Errorf("same order: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "prices", "diff", old, new)
	if !strings.Contains(r.stdout, "0 added, 0 removed, 2 changed, 0 unchanged") {
		t.Errorf("table summary: %s", r.stdout)
	}
	// A regex without a price at --at still shadows the ones after it (a
	// call it matches is unpriced): moved ahead, it is a change too.
	future := strings.Replace(entry("^gpt-4o", "2"), "2025-01-01", "2099-01-01", 1)
	os.WriteFile(old, []byte("models:\n"+entry("^gpt-4", "1")+future), 0o644)
	os.WriteFile(new, []byte("models:\n"+future+entry("^gpt-4", "1")), 0o644)
	r = run(t, "", nil, "prices", "diff", "--exit-code", old, new)
	if r.code != 1 || !strings.Contains(r.stdout, "reordered") || !strings.Contains(r.stdout, "2 changed") {
		t.Errorf("a regex priced later moved ahead: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}
