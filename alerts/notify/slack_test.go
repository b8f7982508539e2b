package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/costpipe/costpipe/internal/nolisten"
)

func TestSlackDelivery(t *testing.T) {
	rec := newRecorder(t, func(int, http.ResponseWriter) int { return http.StatusOK })
	s, err := NewSlack(ReceiverConfig{Name: "team", Type: TypeSlack, URL: rec.srv.URL + "/services/T0/B0/XYZ"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	n := testNotification("s1")
	n.Group = map[string]string{"tenant": "<!channel> & co"}
	n.Unit, n.ThresholdLabel = "USD", "100%"
	if err := s.Deliver(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	if ct := reqs[0].header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if reqs[0].header.Get("webhook-signature") != "" {
		t.Error("a Slack message carries a webhook signature")
	}
	var msg struct{ Text string }
	if err := json.Unmarshal(reqs[0].body, &msg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"*FIRING*", "budget", "`monthly-spend`", "tenant=&lt;!channel&gt; &amp; co",
		"value 812.5 USD · threshold 800 USD (100%)", "period 2025-11-01 00:00 CET → 2025-12-01 00:00 CET",
		"since 2025-11-24 09:00 UTC", "acme spent $812.50", "runbook_url: https://runbooks.example/budget", "id s1"} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, msg.Text)
		}
	}
	if strings.Contains(msg.Text, "<!channel>") {
		t.Error("an unescaped mention reached Slack")
	}
}

func TestSlackTextResolvedAndContributors(t *testing.T) {
	n := Notification{ID: "a1", Type: TypeResolved, Rule: "spend-anomaly", Kind: "anomaly", Value: 40, Threshold: 3.5}
	for i := range 7 {
		n.Contributors = append(n.Contributors, Contributor{Group: map[string]string{"model": string(rune('a' + i))},
			Value: 10, Baseline: 2, Share: 0.1})
	}
	text := SlackText(n)
	for _, want := range []string{":white_check_mark: *RESOLVED* anomaly", "top contributors: model=a 10% (10 vs 2)", "and 2 more"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "period") {
		t.Errorf("a rule without a period shows one:\n%s", text)
	}
	n.Summary = strings.Repeat("é", 4000)
	if text := SlackText(n); len(text) > maxSlackText+len("…") || !utf8.ValidString(text) {
		t.Errorf("long text: %d bytes, valid UTF-8 %v", len(text), utf8.ValidString(text))
	}
}

func TestSlackErrorsHideTheURL(t *testing.T) {
	const token = "hooks-secret-token-123"
	rec := newRecorder(t, func(_ int, w http.ResponseWriter) int { return http.StatusNotFound })
	s, err := NewSlack(ReceiverConfig{Name: "team", Type: TypeSlack, URL: rec.srv.URL + "/services/" + token}, Deps{Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Deliver(context.Background(), testNotification("s2"))
	if !errors.Is(err, ErrPermanent) {
		t.Errorf("404: err = %v, want permanent", err)
	}
	if err != nil && strings.Contains(err.Error(), token) {
		t.Errorf("error shows the URL: %v", err)
	}
	// Nothing listening (a port held where no server can start; a closed
	// recorder's port could be taken by another test's server meanwhile).
	s, err = NewSlack(ReceiverConfig{Name: "team", Type: TypeSlack, URL: "http://" + nolisten.Addr(t) + "/services/" + token}, Deps{Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Deliver(context.Background(), testNotification("s3"))
	if err == nil || errors.Is(err, ErrPermanent) || strings.Contains(err.Error(), token) {
		t.Errorf("closed server: err = %v, want retryable without the URL", err)
	}
}
