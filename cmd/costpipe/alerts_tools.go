package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/warehouse"
)

func alertsTestCommand() *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "run rule unit tests: scripted input series, evaluation times, expected alerts (exit 1 on a failure)",
		ArgsUsage: "FILE...",
		Description: `Each FILE names one rules file (rule_files, relative to FILE) and lists tests: input
series per group (tenant, application, provider, model) with one value per step from a
start, for cost, requests, errors, unpriced, timed and slow calls and latency
percentiles; and checks, at evaluation times, exactly which alerts of a rule are pending
or firing. The rules are evaluated every evaluation_interval from the first series'
start, with the state machine of ` + "`alerts run`" + ` and no ClickHouse: it runs in CI.
Values: "1 2 3", "10x60" (60 times 10), "1+1x5" (1 to 5), "_" (no value). Example:
docs/alerts-example.test.yaml; reference: docs/alerts.md.`,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return &exitError{code: 2, msg: "alerts test takes one or more test FILEs"}
			}
			failed, total := 0, 0
			for _, f := range c.Args().Slice() {
				res, err := alerts.RunTestFile(c.Context, f)
				if err != nil {
					return &exitError{code: 1, msg: err.Error()}
				}
				for _, r := range res {
					total++
					if len(r.Failures) == 0 {
						fmt.Fprintf(c.App.Writer, "PASS  %s: %s\n", f, r.Name)
						continue
					}
					failed++
					fmt.Fprintf(c.App.Writer, "FAIL  %s: %s\n", f, r.Name)
					for _, m := range r.Failures {
						fmt.Fprintf(c.App.Writer, "    %s\n", m)
					}
				}
			}
			fmt.Fprintf(c.App.Writer, "%d test(s), %d failed\n", total, failed)
			if failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

func alertsBacktestCommand() *cli.Command {
	return &cli.Command{
		Name:  "backtest",
		Usage: "replay the rules over stored history: per rule, how often and when it would have fired",
		Description: `Evaluates every rule of --rules every --step from --from to --to against the stored
rollups, with the state machine of ` + "`alerts run`" + ` (nothing is sent or stored), and
reports per rule the evaluations, the episodes (fired, resolved, peak value) and the
time spent firing, summed over the groups of a rule that has several (14 groups firing a
day read 336h): tune a threshold before it pages anyone. A for: or keep_firing_for:
shorter than --step counts as one step. The history is read once, per hour (and per
UTC day for the forecast and growth look-back beyond 30 days), and replayed in memory:
each rule over its own usage (its scope, summed per group it reads); a window shorter
than an hour sees its hour's rates, a latency percentile over several
hours is the highest hourly one. So a backtest is an estimate of ` + "`alerts run`" + `, fast
enough to try thresholds: 30 days of hourly steps take seconds.

Example:
  costpipe alerts backtest --rules rules.yaml --from 2026-03-01 --to 2026-04-01 --step 1h`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rules", Required: true, EnvVars: []string{"COSTPIPE_ALERTS_RULES"}, TakesFile: true, Usage: "rules `FILE`"},
			&cli.StringFlag{Name: "from", Required: true, Usage: "start, RFC 3339 or a date (UTC)"},
			&cli.StringFlag{Name: "to", Usage: "end (exclusive), RFC 3339 or a date (UTC); default now"},
			&cli.DurationFlag{Name: "step", Value: time.Hour, Usage: "time between evaluations"},
			&cli.IntFlag{Name: "episodes", Value: 20, Usage: "list at most this many episodes per rule (all are counted)"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"},
		},
		Action: runAlertsBacktest,
	}
}

func runAlertsBacktest(c *cli.Context) error {
	cfg, err := loadRules(c.String("rules"), false) // nothing is sent: the receivers' files are not needed
	if err != nil {
		return err
	}
	from, err := parseTime(c.String("from"))
	if err != nil {
		return &exitError{code: 2, msg: "invalid --from: " + err.Error()}
	}
	to := time.Now().UTC()
	if s := c.String("to"); s != "" {
		if to, err = parseTime(s); err != nil {
			return &exitError{code: 2, msg: "invalid --to: " + err.Error()}
		}
	}
	if c.Duration("step") <= 0 {
		return &exitError{code: 2, msg: "invalid --step: want > 0"}
	}
	format := c.String("format")
	if format != "table" && format != "json" {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --format %q: want table or json", format)}
	}
	w, q, err := openQuerier(c)
	if err != nil {
		return err
	}
	defer w.Close()
	start := time.Now()
	hist, err := alerts.LoadHistory(c.Context, q, cfg, from, to)
	if err != nil {
		return err
	}
	loaded := time.Since(start)
	res, err := alerts.Backtest(c.Context, cfg, hist, alerts.BacktestOptions{From: from, To: to, Step: c.Duration("step")})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	took := time.Since(start)
	if format == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	out := c.App.Writer
	fmt.Fprintf(out, "backtest of %s from %s to %s every %s (%s: history read in %s)\n\n", cfg.File, from.Format(time.RFC3339), to.Format(time.RFC3339),
		c.Duration("step"), took.Round(time.Millisecond), loaded.Round(time.Millisecond))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "rule\tkind\tevaluations\tfailed\tfired\tfiring (sum over groups)\tfirst\tlast")
	for _, r := range res {
		first, last := "-", "-"
		if n := len(r.Episodes); n > 0 {
			first, last = r.Episodes[0].Start.UTC().Format(time.RFC3339), r.Episodes[n-1].Start.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", r.Rule, r.Kind, r.Evaluations, r.Failed, len(r.Episodes), r.FiringFor.Round(time.Minute), first, last)
	}
	tw.Flush()
	for _, r := range res {
		if r.FirstErr != "" {
			fmt.Fprintf(out, "\n%s: %d evaluation(s) failed, first: %s\n", r.Rule, r.Failed, r.FirstErr)
		}
		if len(r.Episodes) == 0 {
			continue
		}
		fmt.Fprintf(out, "\n%s:\n", r.Rule)
		for i, ep := range r.Episodes {
			if i == c.Int("episodes") {
				fmt.Fprintf(out, "  … %d more\n", len(r.Episodes)-i)
				break
			}
			end := "still firing"
			if !ep.End.IsZero() {
				end = "resolved " + ep.End.UTC().Format(time.RFC3339)
			}
			g := make([]string, 0, len(ep.Group))
			for k, v := range ep.Group {
				g = append(g, k+"="+v)
			}
			th := ""
			if ep.Threshold != "" {
				th = " threshold " + ep.Threshold
			}
			fmt.Fprintf(out, "  fired %s, %s {%s}%s peak %.4g\n", ep.Start.UTC().Format(time.RFC3339), end, strings.Join(g, " "), th, ep.Peak)
		}
	}
	return nil
}

func alertsSilenceCommand() *cli.Command {
	return &cli.Command{
		Name:  "silence",
		Usage: "mute matching alerts' notifications until a silence expires: add, list, expire",
		Description: `A silence matches alerts whose every matcher (name=value) equals the alert's rule, kind,
group dimension (tenant, application, provider, model) or rule label. Silenced alerts keep
their state; one still firing when the silence ends is notified then. Silences live in
ClickHouse (alerts_silences), shared by every ` + "`alerts run`" + ` replica.`,
		Subcommands: []*cli.Command{
			{
				Name:  "add",
				Usage: "add a silence; prints its id alone on stdout (its end and matchers on stderr)",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "match", Required: true, Usage: "`NAME=VALUE` matcher (repeatable): rule=…, kind=…, tenant=…, a label"},
					&cli.DurationFlag{Name: "duration", Value: 2 * time.Hour, Usage: "how long from --start; the end must be at most 2106-02-06T00:00:00Z"},
					&cli.StringFlag{Name: "start", Usage: "start, RFC 3339 or a date (UTC), from 1970-01-01 (default now)"},
					&cli.StringFlag{Name: "comment", Usage: "why (shown by list)"},
					&cli.StringFlag{Name: "author", Usage: "who (default: the user name)"},
				},
				Action: func(c *cli.Context) error {
					m, err := alerts.ParseMatchers(c.StringSlice("match"))
					if err != nil {
						return &exitError{code: 2, msg: "invalid --match: " + err.Error()}
					}
					for _, k := range alerts.UnknownMatcherNames(m) {
						fmt.Fprintf(c.App.ErrWriter, "warning: --match %s=…: %q is not rule, kind or a dimension (%s); it matches only alerts of rules that set it as a label\n",
							k, k, dimNames())
					}
					for _, f := range []string{"comment", "author"} {
						if v := c.String(f); !schemas.ValidText(v) {
							return &exitError{code: 2, msg: fmt.Sprintf("invalid --%s %q: control characters (tabs and line breaks included) and invalid UTF-8 are not allowed: silence list shows it in a terminal", f, v)}
						}
					}
					start := time.Now().UTC().Truncate(time.Second)
					if s := c.String("start"); s != "" {
						if start, err = parseTime(s); err != nil {
							return &exitError{code: 2, msg: "invalid --start: " + err.Error()}
						}
					}
					// A ClickHouse DateTime stores 1970 to 2106 and wraps what lies
					// outside: such a silence would never silence anything.
					if start.Before(alerts.MinTime) {
						return &exitError{code: 2, msg: fmt.Sprintf("invalid --start %s: before %s, the earliest start a silence is stored with",
							start.Format(time.RFC3339), alerts.MinTime.Format(time.RFC3339))}
					}
					if !start.Before(alerts.MaxTime) {
						return &exitError{code: 2, msg: fmt.Sprintf("invalid --start %s: want a start before %s, the latest end a silence is stored with",
							start.Format(time.RFC3339), alerts.MaxTime.Format(time.RFC3339))}
					}
					d := c.Duration("duration")
					if d <= 0 {
						return &exitError{code: 2, msg: "invalid --duration: want > 0"}
					}
					if end := start.Add(d); end.After(alerts.MaxTime) {
						return &exitError{code: 2, msg: fmt.Sprintf("invalid --duration %s: the silence would end at %s, after %s, the latest end a silence is stored with",
							d, end.Format(time.RFC3339), alerts.MaxTime.Format(time.RFC3339))}
					}
					author := c.String("author")
					if author == "" {
						if u, err := user.Current(); err == nil {
							author = u.Username
						}
					}
					var b [8]byte
					rand.Read(b[:])
					sil := alerts.Silence{ID: hex.EncodeToString(b[:]), Matchers: m, StartsAt: start, EndsAt: start.Add(d),
						CreatedBy: author, Comment: c.String("comment")}
					return withStore(c, func(s *alerts.Store) error {
						if err := s.AddSilence(c.Context, sil); err != nil {
							return err
						}
						// The id alone on stdout, for id=$(costpipe alerts silence add …).
						fmt.Fprintln(c.App.Writer, sil.ID)
						fmt.Fprintf(c.App.ErrWriter, "silence %s until %s: %s\n", sil.ID, sil.EndsAt.Format(time.RFC3339), sil.MatchersText())
						return nil
					})
				},
			},
			{
				Name:  "list",
				Usage: "list active silences (with --all, expired ones too)",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Usage: "include expired silences"}},
				Action: func(c *cli.Context) error {
					return withStore(c, func(s *alerts.Store) error {
						ss, err := s.Silences(c.Context, c.Bool("all"))
						if err != nil {
							return err
						}
						tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
						fmt.Fprintln(tw, "id\tstarts\tends\tmatchers\tby\tcomment")
						for _, sil := range ss {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", printable(sil.ID), sil.StartsAt.UTC().Format(time.RFC3339), sil.EndsAt.UTC().Format(time.RFC3339),
								printable(sil.MatchersText()), printable(sil.CreatedBy), printable(sil.Comment))
						}
						return tw.Flush()
					})
				},
			},
			{
				Name:      "expire",
				Usage:     "end silences now",
				ArgsUsage: "ID...",
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return &exitError{code: 2, msg: "alerts silence expire takes one or more silence IDs (see alerts silence list)"}
					}
					return withStore(c, func(s *alerts.Store) error {
						for _, id := range c.Args().Slice() {
							if err := s.ExpireSilence(c.Context, id); err != nil {
								return &exitError{code: 1, msg: err.Error()}
							}
							fmt.Fprintf(c.App.Writer, "expired %s\n", id)
						}
						return nil
					})
				},
			},
		},
	}
}

// printable is s, quoted when it has a control character: a silence
// stored before they were refused cannot write escapes to a terminal.
func printable(s string) string {
	if schemas.ValidText(s) {
		return s
	}
	return strconv.Quote(s)
}

// withStore opens the database, checks it holds this binary's migrations
// (it applies none: costpipe migrate does), and calls fn with its store.
func withStore(c *cli.Context, fn func(*alerts.Store) error) error {
	o := warehouse.DefaultOptions()
	o.DSN = c.String("clickhouse")
	if err := clickhouseSecurity(c, &o); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	w, err := warehouse.Open(c.Context, o)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := analytics.New(w, analytics.Options{}).CheckMigrated(c.Context); err != nil {
		return err
	}
	return fn(alerts.NewStore(w, time.Now))
}

// dimNames lists the dimensions a silence can match: "tenant, application, …".
func dimNames() string {
	ds := analytics.Dims()
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = string(d)
	}
	return strings.Join(names, ", ")
}
