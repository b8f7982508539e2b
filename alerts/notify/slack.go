package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Slack delivers notifications to a Slack incoming webhook: a POST of
// {"text": ...} with a readable summary (Slack mrkdwn). The URL is a secret
// and never appears in errors or logs. Safe for concurrent use.
type Slack struct {
	name    string
	url     string
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
}

// NewSlack builds a Slack receiver from a validated configuration whose URL
// is inline (Build reads url_file first). deps.HTTP (default: a new
// http.Client) is used without following redirects.
func NewSlack(cfg ReceiverConfig, deps Deps) (*Slack, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("receiver %q: slack needs url or url_file", cfg.Name)
	}
	return &Slack{name: cfg.Name, url: cfg.URL, client: noRedirects(deps.HTTP),
		timeout: cfg.Timeout, now: nowOr(deps.Clock)}, nil
}

// Name returns the receiver's configured name.
func (s *Slack) Name() string { return s.name }

// Deliver posts SlackText(n). Answers are classified as for webhooks: Slack
// answers 400, 403, 404 and 410 for a bad payload or a removed channel
// (permanent), 429 when rate limited and 5xx (retried).
func (s *Slack) Deliver(ctx context.Context, n Notification) error {
	payload, err := json.Marshal(struct {
		Text string `json:"text"`
	}{SlackText(n)})
	if err != nil {
		return Permanent(fmt.Errorf("slack %q: cannot encode message: %w", s.name, err))
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	if err := postJSON(ctx, s.client, s.url, h, payload, s.now); err != nil {
		return fmt.Errorf("slack %q: %w", s.name, err)
	}
	return nil
}

// maxSlackText keeps a message well under Slack's 40,000-character limit.
const maxSlackText = 3000

// SlackText is the message text Slack shows for n, in Slack mrkdwn:
//
//	:rotating_light: *FIRING* budget `monthly-spend` tenant=acme
//	value 812.5 USD · threshold 800 USD (100%) · period 2025-11-01 00:00 CET → 2025-12-01 00:00 CET · since 2025-11-24 09:00 UTC
//	Spend reached 101% of the $800 monthly budget
//	top contributors: model=gpt-4o 72% (412.3 vs 120.1), model=o3 20% (150 vs 80)
//	id 9f2c…
//
// The period is shown in its own time zone. Values from the rule and the
// data are escaped (&, <, >) so they cannot
// mention users or form links.
func SlackText(n Notification) string {
	var b strings.Builder
	icon, state := ":rotating_light:", "FIRING"
	if n.Type == TypeResolved {
		icon, state = ":white_check_mark:", "RESOLVED"
	}
	fmt.Fprintf(&b, "%s *%s* %s `%s`", icon, state, slackEscape(n.Kind), slackEscape(strings.ReplaceAll(n.Rule, "`", "'")))
	if g := formatGroup(n.Group); g != "" {
		b.WriteString(" " + slackEscape(g))
	}
	unit := ""
	if n.Unit != "" {
		unit = " " + strings.ReplaceAll(n.Unit, "_", " ")
	}
	b.WriteString("\nvalue " + formatNumber(n.Value) + unit + " · threshold " + formatNumber(n.Threshold) + unit)
	if n.ThresholdLabel != "" {
		b.WriteString(" (" + slackEscape(n.ThresholdLabel) + ")")
	}
	if !n.PeriodStart.IsZero() || !n.PeriodEnd.IsZero() {
		b.WriteString(" · period " + formatDay(n.PeriodStart) + " → " + formatDay(n.PeriodEnd))
	}
	if !n.StartedAt.IsZero() {
		b.WriteString(" · since " + n.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if n.Summary != "" {
		b.WriteString("\n" + slackEscape(n.Summary))
	}
	if len(n.Contributors) > 0 {
		b.WriteString("\ntop contributors:")
		for i, c := range n.Contributors {
			if i == 5 {
				fmt.Fprintf(&b, " and %d more", len(n.Contributors)-i)
				break
			}
			sep := ","
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(&b, "%s %s %s%% (%s vs %s)", sep, slackEscape(formatGroup(c.Group)),
				strconv.FormatFloat(c.Share*100, 'f', 0, 64), formatNumber(c.Value), formatNumber(c.Baseline))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(n.Annotations)) {
		if k == "runbook_url" || k == "dashboard_url" {
			b.WriteString("\n" + slackEscape(k) + ": " + slackEscape(n.Annotations[k]))
		}
	}
	b.WriteString("\nid " + slackEscape(n.ID))
	s := b.String()
	if len(s) > maxSlackText {
		cut := maxSlackText
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(c byte) bool { return c&0xC0 != 0x80 }

// slackEscape escapes the three characters Slack mrkdwn gives meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// formatGroup writes a group as k=v pairs sorted by key.
func formatGroup(g map[string]string) string {
	parts := make([]string, 0, len(g))
	for _, k := range slices.Sorted(maps.Keys(g)) {
		parts = append(parts, k+"="+g[k])
	}
	return strings.Join(parts, " ")
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func formatDay(t time.Time) string {
	if t.IsZero() {
		return "…"
	}
	return t.Format("2006-01-02 15:04 MST")
}
