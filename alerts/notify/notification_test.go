package notify

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBodyFields(t *testing.T) {
	n := testNotification("a1b2c3")
	n.Kind = "anomaly"
	n.Contributors = []Contributor{
		{Group: map[string]string{"model": "gpt-4o"}, Value: 412.25, Baseline: 120.5, Share: 0.72},
		{Group: map[string]string{"model": "o3"}, Value: 150, Baseline: 80, Share: 0.2},
	}
	n.Unit, n.ThresholdLabel = "USD", "100%"
	n.Scope = map[string][]string{"application": {"chat", "search"}}
	raw, err := n.Body()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, raw)
	}
	wantKeys := []string{"annotations", "contributors", "group", "id", "kind", "labels", "period_end",
		"period_start", "rule", "scope", "started_at", "summary", "threshold", "threshold_label", "type", "unit", "value"}
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, wantKeys) {
		t.Errorf("keys = %q, want %q", keys, wantKeys)
	}
	for k, want := range map[string]any{
		"type": "alert.firing", "id": "a1b2c3", "rule": "monthly-spend", "kind": "anomaly",
		"value": 812.5, "threshold": 800.0, "unit": "USD", "threshold_label": "100%",
		// November 1st 00:00 in Berlin (CET, UTC+1) is October 31st 23:00 UTC.
		"period_start": "2025-10-31T23:00:00Z", "period_end": "2025-11-30T23:00:00Z",
		"started_at": "2025-11-24T09:00:00Z", "summary": "acme spent $812.50 of its $800 monthly budget",
	} {
		if got[k] != want {
			t.Errorf("%s = %#v, want %#v", k, got[k], want)
		}
	}
	if g, _ := got["group"].(map[string]any); g["tenant"] != "acme" || len(g) != 1 {
		t.Errorf("group = %#v", got["group"])
	}
	if s, _ := got["scope"].(map[string]any); len(s) != 1 || len(s["application"].([]any)) != 2 {
		t.Errorf("scope = %#v", got["scope"])
	}
	if l, _ := got["labels"].(map[string]any); l["severity"] != "page" {
		t.Errorf("labels = %#v", got["labels"])
	}
	if a, _ := got["annotations"].(map[string]any); a["runbook_url"] != "https://runbooks.example/budget" {
		t.Errorf("annotations = %#v", got["annotations"])
	}
	cs, _ := got["contributors"].([]any)
	if len(cs) != 2 {
		t.Fatalf("contributors = %#v", got["contributors"])
	}
	c0, _ := cs[0].(map[string]any)
	if g, _ := c0["group"].(map[string]any); g["model"] != "gpt-4o" || c0["value"] != 412.25 ||
		c0["baseline"] != 120.5 || c0["share"] != 0.72 {
		t.Errorf("contributors[0] = %#v", c0)
	}
	if strings.ContainsAny(string(raw), "\n ") && strings.Contains(string(raw), "\n") {
		t.Errorf("body is not minified: %s", raw)
	}
}

func TestBodyOmitsZeroTimesAndEmptyContributors(t *testing.T) {
	n := Notification{ID: "x", Type: TypeResolved, Rule: "r", Kind: "unpriced", Value: 0, Threshold: 1,
		StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)}
	raw, err := n.Body()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"period_start", "period_end", "contributors", "unit", "threshold_label"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s present in %s", k, raw)
		}
	}
	for _, k := range []string{"group", "scope", "labels", "annotations"} {
		if m, ok := got[k].(map[string]any); !ok || len(m) != 0 {
			t.Errorf("%s = %#v, want {}", k, got[k])
		}
	}
	if got["started_at"] != "2025-01-02T03:04:05.6Z" {
		t.Errorf("started_at = %v", got["started_at"])
	}
	if got["value"] != 0.0 {
		t.Errorf("value = %#v: a zero value must be present", got["value"])
	}
}

func TestBodyRejectsNonFinite(t *testing.T) {
	for name, mutate := range map[string]func(*Notification){
		"value":     func(n *Notification) { n.Value = math.NaN() },
		"threshold": func(n *Notification) { n.Threshold = math.Inf(1) },
		"contributors[0].share": func(n *Notification) {
			n.Contributors = []Contributor{{Share: math.Inf(-1)}}
		},
	} {
		n := testNotification("id1")
		mutate(&n)
		if _, err := n.Body(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want one naming %s", name, err, name)
		}
	}
}
