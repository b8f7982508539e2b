// Command costpipe is the single binary of the costpipe pipeline: it wires
// flags and environment variables into the packages' Options and supervises
// them. No pipeline logic lives here.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit code with a message already printed (or to print).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newApp().RunContext(ctx, os.Args)
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "costpipe: "+ee.msg)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "costpipe: "+err.Error())
	os.Exit(1)
}

func newApp() *cli.App {
	conn := newConnFlags()
	app := &cli.App{
		Name:    "costpipe",
		Usage:   "streaming usage, cost and latency analytics for AI inference",
		Version: version,
		Description: `costpipe prices every inference call from an effective-dated catalog and lands
per-minute rollups (cost, tokens, latency and TTFT percentiles) in ClickHouse.
Every flag can also be set with the environment variable shown in its help.`,
		Flags:                append(conn.appFlags(), globalFlags()...),
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			brokerCommand(),
			migrateCommand(),
			aggregateCommand(),
			demoCommand(),
			produceCommand(),
			ingestCommand(),
			loadgenCommand(),
			pricesCommand(),
			queryCommand(),
			retentionCommand(),
			deriveCommand(),
			repriceCommand(),
			alertsCommand(),
			serveCommand(),
			probeCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints and exits
	}
	app.OnUsageError = usageErrorOf("")
	for _, cmd := range app.Commands {
		conn.attach(cmd, "")
		setUsageErrors(cmd, "")
	}
	return app
}

// setUsageErrors gives cmd and its subcommands that have none the one
// answer to a flag they cannot take: exit status 2 and one line naming the
// flag and the help to read, not "Incorrect Usage" and the whole help
// page with status 1. path is the names of cmd's parents.
func setUsageErrors(cmd *cli.Command, path string) {
	path = strings.TrimSpace(path + " " + cmd.Name)
	if cmd.OnUsageError == nil {
		cmd.OnUsageError = usageErrorOf(path)
	}
	for _, sub := range cmd.Subcommands {
		setUsageErrors(sub, path)
	}
}

// usageErrorOf is the usage error of the command at path ("" for the
// app's own flags).
func usageErrorOf(path string) cli.OnUsageErrorFunc {
	help := strings.Join(strings.Fields("costpipe "+path+" --help"), " ")
	return func(_ *cli.Context, err error, _ bool) error {
		return &exitError{code: 2, msg: goFlagName.ReplaceAllString(err.Error(), "$1--$2") + " (see " + help + ")"}
	}
}

// goFlagName is a flag as Go's flag package names it in its errors (-name),
// which costpipe's help spells --name.
var goFlagName = regexp.MustCompile(`(flag |: )-([a-z])`)

// globalFlags are the app's flags other than the connection flags
// (connflags.go); they go before the command name only.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"COSTPIPE_LOG_LEVEL"},
			Usage: "log level: debug, info, warn or error"},
	}
}

// logger builds the process logger (text on stderr) from --log-level.
func logger(c *cli.Context) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("invalid --log-level %q: want debug, info, warn or error", c.String("log-level"))}
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})), nil
}
