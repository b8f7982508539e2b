package notify

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Notification types: the value of Notification.Type and of the body's "type".
const (
	TypeFiring   = "alert.firing"
	TypeResolved = "alert.resolved"
)

// Notification is one alert state change to deliver. The alerts package
// builds it; receivers only read it. It is a value: receivers never modify its
// maps.
type Notification struct {
	// ID is the idempotency key: the webhook-id header and the Kafka record
	// key. The same alert state change always has the same ID, so a receiver
	// drops a repeat by ID. It must be non-empty, printable ASCII, without
	// '.' or spaces (Standard Webhooks signs id "." timestamp "." body).
	ID string
	// Type is TypeFiring or TypeResolved.
	Type string
	// Rule is the rule's name.
	Rule string
	// Kind is the rule kind: budget, forecast, growth, anomaly, latency,
	// error_rate or unpriced.
	Kind string
	// Group holds the dimension values of the alert's group, for example
	// {"tenant": "acme"}; empty for an unscoped rule.
	Group map[string]string
	// Scope is the rule's scope: the calls it reads, by dimension; empty
	// for all calls.
	Scope map[string][]string
	// Value is the measured value that crossed (or fell back under) the
	// threshold, in Unit.
	Value float64
	// Threshold is the rule's threshold in the same unit.
	Threshold float64
	// Unit is the unit of Value and Threshold: USD (budget, forecast,
	// anomaly), days (growth: the doubling time), ms (latency), percent
	// (error_rate), burn_rate (the SLO forms: the bad calls' share over the
	// error budget) or calls (unpriced).
	Unit string
	// ThresholdLabel names the threshold of a rule with several, as the
	// rules file does ("80%" of a budget); empty otherwise.
	ThresholdLabel string
	// PeriodStart and PeriodEnd bound the rule's period (budget, forecast);
	// zero when the rule has no period.
	PeriodStart time.Time
	PeriodEnd   time.Time
	// StartedAt is when the alert started firing.
	StartedAt time.Time
	// Summary is one human-readable line.
	Summary string
	// Labels and Annotations are the rule's labels and annotations.
	Labels      map[string]string
	Annotations map[string]string
	// Contributors are, for anomaly alerts, the groups that contributed most
	// to the change, largest first.
	Contributors []Contributor

	// RetryUntil and Deadline steer the Dispatcher; they are not part of
	// what a receiver is sent. Zero means unset.
	//
	// RetryUntil: a notification whose attempts are used up on retryable
	// errors before this time is deferred, not dead: its Result's error
	// wraps ErrDeferred and the sender offers it again later (alerts run:
	// at a later evaluation).
	RetryUntil time.Time
	// Deadline is when the sender's hold on the notification ends (alerts
	// run: its claim's lease, after which another replica may send it). No
	// attempt starts that its timeout could carry past it: the Result's
	// error then wraps ErrExpired.
	Deadline time.Time
}

// Contributor is one group's part in an anomaly.
type Contributor struct {
	// Group holds the dimension values of the contributing group.
	Group map[string]string
	// Value is the group's value in the anomalous window.
	Value float64
	// Baseline is the group's expected value (median of the same hour of
	// the week).
	Baseline float64
	// Share is the group's share of the change, 0..1.
	Share float64
}

// body is the JSON shape of Body; field order is the order on the wire.
type body struct {
	Type           string              `json:"type"`
	ID             string              `json:"id"`
	Rule           string              `json:"rule"`
	Kind           string              `json:"kind"`
	Group          map[string]string   `json:"group"`
	Scope          map[string][]string `json:"scope"`
	Value          float64             `json:"value"`
	Threshold      float64             `json:"threshold"`
	Unit           string              `json:"unit,omitempty"`
	ThresholdLabel string              `json:"threshold_label,omitempty"`
	PeriodStart    string              `json:"period_start,omitempty"`
	PeriodEnd      string              `json:"period_end,omitempty"`
	StartedAt      string              `json:"started_at,omitempty"`
	Summary        string              `json:"summary"`
	Labels         map[string]string   `json:"labels"`
	Annotations    map[string]string   `json:"annotations"`
	Contributors   []contributor       `json:"contributors,omitempty"`
}

type contributor struct {
	Group    map[string]string `json:"group"`
	Value    float64           `json:"value"`
	Baseline float64           `json:"baseline"`
	Share    float64           `json:"share"`
}

// Body is the JSON body every receiver but Slack sends, minified, with the
// fields type, id, rule, kind, group, scope, value, threshold, unit,
// threshold_label, period_start, period_end, started_at, summary, labels,
// annotations and contributors.
// Times are RFC 3339 in UTC (fractional seconds only when not zero) and are
// omitted when zero; group, labels and annotations are always objects ({}
// when empty), and so is scope; unit, threshold_label and contributors are
// omitted when empty. Maps are written with
// sorted keys, so the same Notification always gives the same bytes.
//
// Body fails only when a number is NaN or infinite (JSON has neither).
func (n Notification) Body() ([]byte, error) {
	b := body{
		Type: n.Type, ID: n.ID, Rule: n.Rule, Kind: n.Kind,
		Group: orEmpty(n.Group), Scope: orEmpty(n.Scope), Value: n.Value, Threshold: n.Threshold,
		Unit: n.Unit, ThresholdLabel: n.ThresholdLabel,
		PeriodStart: formatTime(n.PeriodStart), PeriodEnd: formatTime(n.PeriodEnd),
		StartedAt: formatTime(n.StartedAt), Summary: n.Summary,
		Labels: orEmpty(n.Labels), Annotations: orEmpty(n.Annotations),
	}
	if err := finite("value", n.Value); err != nil {
		return nil, fmt.Errorf("cannot encode notification %q: %w", n.ID, err)
	}
	if err := finite("threshold", n.Threshold); err != nil {
		return nil, fmt.Errorf("cannot encode notification %q: %w", n.ID, err)
	}
	for i, c := range n.Contributors {
		for _, f := range []struct {
			name string
			v    float64
		}{{"value", c.Value}, {"baseline", c.Baseline}, {"share", c.Share}} {
			if err := finite(fmt.Sprintf("contributors[%d].%s", i, f.name), f.v); err != nil {
				return nil, fmt.Errorf("cannot encode notification %q: %w", n.ID, err)
			}
		}
		b.Contributors = append(b.Contributors, contributor{Group: orEmpty(c.Group),
			Value: c.Value, Baseline: c.Baseline, Share: c.Share})
	}
	out, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("cannot encode notification %q: %w", n.ID, err)
	}
	return out, nil
}

func finite(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s is %v, which JSON cannot carry", field, v)
	}
	return nil
}

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// formatTime writes t as RFC 3339 in UTC, or "" when t is zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
