package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogReceiverWritesOneLine(t *testing.T) {
	var buf bytes.Buffer
	l := NewLog("audit", slog.New(slog.NewJSONHandler(&buf, nil)))
	n := testNotification("l-1")
	n.Contributors = []Contributor{{Group: map[string]string{"model": "gpt-4o"}, Value: 3, Baseline: 1, Share: 0.9}}
	if err := l.Deliver(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	var got struct {
		Level, Msg, Receiver, ID, Type, Rule, Kind string
		Group                                      map[string]string
		Value, Threshold                           float64
		PeriodStart                                string `json:"period_start"`
		Labels                                     map[string]string
		Contributors                               map[string]struct {
			Group map[string]string
			Share float64
		}
	}
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got.Level != "WARN" || got.Msg != "alert firing" || got.Receiver != "audit" || got.ID != "l-1" ||
		got.Rule != "monthly-spend" || got.Kind != "budget" || got.Group["tenant"] != "acme" ||
		got.Value != 812.5 || got.Threshold != 800 || got.PeriodStart != "2025-10-31T23:00:00Z" ||
		got.Labels["severity"] != "page" || got.Contributors["0"].Group["model"] != "gpt-4o" || got.Contributors["0"].Share != 0.9 {
		t.Errorf("line = %s", lines[0])
	}
	buf.Reset()
	n.Type = TypeResolved
	_ = l.Deliver(context.Background(), n)
	if !strings.Contains(buf.String(), `"level":"INFO","msg":"alert resolved"`) {
		t.Errorf("resolved line = %s", buf.String())
	}
}
