package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/alerts"
)

// alertsCommand is `costpipe alerts`: check, run, test, backtest, silence.
func alertsCommand() *cli.Command {
	return &cli.Command{
		Name:  "alerts",
		Usage: "cost, growth, anomaly, latency and error-budget alerts: check, run, test, backtest and silence rules",
		Description: `Alert rules live in a YAML file (docs/alerts.md; an example in docs/alerts-example.yaml):
budget, forecast, growth, anomaly, latency, error_rate and unpriced rules, the receivers
they notify (webhook, slack, kafka, log) and the defaults (interval, tz, group_wait,
group_interval, repeat_interval).

  costpipe alerts check rules.yaml                     validate; errors name FILE:LINE:COL
  costpipe alerts run --rules rules.yaml               evaluate and notify, every --interval
  costpipe alerts test rules_test.yaml                 rule unit tests on scripted series
  costpipe alerts backtest --rules rules.yaml --from 2026-03-01 --to 2026-04-01
  costpipe alerts silence add --match tenant=acme --duration 2h --comment "load test"`,
		Subcommands: alertsSubcommands(),
	}
}

func alertsCheckCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate a rules file: every error as FILE:LINE:COL: message, exit 1",
		ArgsUsage: "FILE",
		Description: `Parses the rules file as ` + "`alerts run`" + ` would, without connecting anywhere: reads
every receiver's url_file and secrets_file too (a missing file, a directory, a secret
without whsec_ fail here as they would fail run), and prints every problem found (not
only the first) as FILE:LINE:COL: message on stderr (exit 1), or a summary of the rules
on stdout (exit 0).`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return &exitError{code: 2, msg: "alerts check takes one rules FILE"}
			}
			cfg, err := loadRules(c.Args().First(), true)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: %d rule(s), %d receiver(s), interval %s, tz %s\n", cfg.File, len(cfg.Rules), len(cfg.Receivers), cfg.Interval, cfg.TZ)
			for _, r := range cfg.Rules {
				fmt.Fprintf(c.App.Writer, "  %-32s %s\n", r.Name, r.Kind)
			}
			return nil
		},
	}
}

// loadRules reads and parses a rules file, with receiverFiles its
// receivers' url_file and secrets_file too (alerts.LoadConfig: what run
// needs); the errors are printed one per line (FILE:LINE:COL: message) and
// exit 1.
func loadRules(file string, receiverFiles bool) (*alerts.Config, error) {
	var cfg *alerts.Config
	var err error
	if receiverFiles {
		cfg, err = alerts.LoadConfig(file)
	} else {
		var data []byte
		if data, err = os.ReadFile(file); err != nil {
			return nil, &exitError{code: 1, msg: fmt.Sprintf("cannot read rules file: %v", err)}
		}
		cfg, err = alerts.ParseConfig(file, data)
	}
	if err != nil {
		var es alerts.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintln(os.Stderr, e.Error())
			}
			return nil, &exitError{code: 1, msg: fmt.Sprintf("%s: %d error(s)", file, len(es))}
		}
		return nil, &exitError{code: 1, msg: err.Error()}
	}
	return cfg, nil
}
