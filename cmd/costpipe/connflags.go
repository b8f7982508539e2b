package main

import (
	"flag"

	"github.com/urfave/cli/v2"
)

// connFlagSpecs are the connection flags, declared once here: on the app,
// so they may come before the command name, and on each command that uses
// them (connUsers), so they may come after it, with the same environment
// variables. A value after the command name wins over one before it, which
// wins over the environment, which wins over the default. The TLS and SASL
// flags (connsecure.go) come with --brokers and --clickhouse.
func connFlagSpecs() []cli.StringFlag {
	specs := []cli.StringFlag{
		{Name: "brokers", Value: "127.0.0.1:9092", EnvVars: []string{"COSTPIPE_BROKERS"},
			Usage: "comma-separated Kafka seed brokers `HOST:PORT,...`"},
		{Name: "topic", Value: "costpipe.events", EnvVars: []string{"COSTPIPE_TOPIC"},
			Usage: "Kafka topic of the events"},
		{Name: "clickhouse", Value: "clickhouse://127.0.0.1:9000/costpipe", EnvVars: []string{"COSTPIPE_CLICKHOUSE"},
			Usage: "ClickHouse DSN `clickhouse://[user:pass@]host:9000/database`"},
		{Name: "prices", EnvVars: []string{"COSTPIPE_PRICES"},
			Usage: "price catalog YAML `FILE` replacing the embedded one (see `costpipe prices list`)", TakesFile: true},
	}
	return append(specs, secureStringFlagSpecs()...)
}

// connUsers maps a command path (as typed, "query usage") to the connection
// flags it reads.
var connUsers = map[string][]string{
	"broker":                {"topic"},
	"migrate":               {"clickhouse"},
	"aggregate":             {"brokers", "topic", "clickhouse", "prices"},
	"demo":                  {"clickhouse", "prices"},
	"produce":               {"brokers", "topic"},
	"dlq read":              {"brokers", "topic"},
	"dlq replay":            {"brokers", "topic"},
	"dlq unspool":           {"brokers"},
	"ingest":                {"brokers", "topic"},
	"loadgen":               {"brokers", "topic", "prices"},
	"prices list":           {"prices"},
	"prices cost":           {"prices"},
	"prices coverage":       {"clickhouse", "prices"},
	"query usage":           {"clickhouse"},
	"reprice":               {"clickhouse", "prices"},
	"query latency":         {"clickhouse"},
	"query top":             {"clickhouse"},
	"query series":          {"clickhouse"},
	"query growth":          {"clickhouse"},
	"query forecast":        {"clickhouse"},
	"derive":                {"clickhouse"},
	"retention":             {"clickhouse"},
	"serve":                 {"clickhouse", "prices"},
	"alerts run":            {"brokers", "clickhouse"},
	"alerts backtest":       {"clickhouse"},
	"alerts silence add":    {"clickhouse"},
	"alerts silence list":   {"clickhouse"},
	"alerts silence expire": {"clickhouse"},
}

// connFlags is the set of connection flags of one App.
type connFlags struct {
	specs  []cli.StringFlag
	bools  []cli.BoolFlag         // the boolean ones (secureBoolFlagSpecs)
	before map[string]*givenValue // per name: the value given before the command
}

// givenValue is a value given on the command line; set is false until then.
type givenValue struct {
	v   string
	set bool
}

func newConnFlags() *connFlags {
	cf := &connFlags{specs: connFlagSpecs(), bools: secureBoolFlagSpecs(), before: map[string]*givenValue{}}
	for _, s := range cf.specs {
		cf.before[s.Name] = &givenValue{}
	}
	for _, s := range cf.bools {
		cf.before[s.Name] = &givenValue{}
	}
	return cf
}

// appFlags returns the app's copies, which record a value given on the
// command line (not one from the environment).
func (cf *connFlags) appFlags() []cli.Flag {
	var fs []cli.Flag
	for _, s := range cf.specs {
		fs = append(fs, &appConnFlag{StringFlag: s, given: cf.before[s.Name]})
	}
	for _, s := range cf.bools {
		fs = append(fs, &appConnBoolFlag{BoolFlag: s, given: cf.before[s.Name]})
	}
	return fs
}

// attach adds the command-level copies to cmd and, by connUsers, to its
// subcommands; path is the names of cmd's parents. It returns cmd.
func (cf *connFlags) attach(cmd *cli.Command, path string) *cli.Command {
	if path != "" {
		path += " "
	}
	path += cmd.Name
	for _, name := range connFlagNames(path) {
		for _, s := range cf.specs {
			if s.Name == name {
				cmd.Flags = append(cmd.Flags, &cmdConnFlag{StringFlag: s, before: cf.before[name]})
			}
		}
		for _, s := range cf.bools {
			if s.Name == name {
				cmd.Flags = append(cmd.Flags, &cmdConnBoolFlag{BoolFlag: s, before: cf.before[name]})
			}
		}
	}
	for _, sub := range cmd.Subcommands {
		cf.attach(sub, path)
	}
	return cmd
}

// appConnFlag is a connection flag before the command name.
type appConnFlag struct {
	cli.StringFlag
	given *givenValue
}

// Apply registers the flag and records when the command line sets it.
func (f *appConnFlag) Apply(set *flag.FlagSet) error {
	if err := f.StringFlag.Apply(set); err != nil {
		return err
	}
	for _, name := range f.Names() {
		if fl := set.Lookup(name); fl != nil {
			fl.Value = &recordingValue{Value: fl.Value, given: f.given}
		}
	}
	return nil
}

// recordingValue is a flag.Value that notes what the command line set.
type recordingValue struct {
	flag.Value
	given *givenValue
}

func (v *recordingValue) Set(s string) error {
	if err := v.Value.Set(s); err != nil {
		return err
	}
	v.given.v, v.given.set = s, true
	return nil
}

// Get implements flag.Getter, as the wrapped value does.
func (v *recordingValue) Get() any { return v.String() }

// cmdConnFlag is a connection flag after the command name. Its help shows
// the default and environment variable; when the flag was given before the
// command name, that value is its default instead, ahead of the environment.
type cmdConnFlag struct {
	cli.StringFlag
	before *givenValue
}

// Apply registers the flag with the value given before the command, if
// any, as its default.
func (f *cmdConnFlag) Apply(set *flag.FlagSet) error {
	if !f.before.set {
		return f.StringFlag.Apply(set)
	}
	given := f.StringFlag // a copy: the help keeps the real default and env
	given.Value, given.EnvVars, given.FilePath = f.before.v, nil, ""
	return given.Apply(set)
}

// connFlagGiven reports whether the connection flag name was given on the
// command line, before or after the command name, or by its environment
// variable (the command's own IsSet misses the first).
func connFlagGiven(c *cli.Context, name string) bool {
	for _, x := range c.Lineage() {
		if x.IsSet(name) {
			return true
		}
	}
	return false
}
