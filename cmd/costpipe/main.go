// Command costpipe is the single binary of the costpipe pipeline: it wires
// flags and environment variables into the packages' Options and supervises
// them. No pipeline logic lives here.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"regexp"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// signalContext is cancelled by the first SIGINT or SIGTERM, which it
// reports on w (a command shutting down may take its time: landing what it
// holds, draining requests); the next one ends the process at once, as
// Go's default handling does, instead of being ignored.
//
// The context's cause (context.Cause) is a signalCause naming the signal.
func signalContext(w io.Writer) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			fmt.Fprintf(w, "costpipe: %s received: shutting down (send another to stop at once)\n", signalCause{sig})
			signal.Stop(ch) // the next one gets Go's default: exit
			cancel(signalCause{sig})
		case <-ctx.Done():
			signal.Stop(ch)
		}
	}()
	return ctx, func() { cancel(nil) }
}

// signalCause is the cause of a context that signalContext cancelled.
type signalCause struct{ sig os.Signal }

func (s signalCause) Error() string {
	if s.sig == os.Interrupt {
		return "SIGINT"
	}
	return "SIGTERM"
}

// interruptedStatus is the exit status of a command that a signal stopped
// before it finished, as a shell reports one killed by it: 128 + the
// signal's number (130 for SIGINT, 143 for SIGTERM); 130 when ctx was not
// cancelled by signalContext.
func interruptedStatus(ctx context.Context) int {
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		if n, ok := sc.sig.(syscall.Signal); ok {
			return 128 + int(n)
		}
	}
	return 130
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit code with a message already printed (or to print).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signalContext(os.Stderr)
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
			dlqCommand(),
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
	// Every command's --log-level is checked, including those that log
	// nothing at info level (query accepted any value).
	app.Before = func(c *cli.Context) error {
		_, err := logger(c)
		return err
	}
	for _, cmd := range app.Commands {
		conn.attach(cmd, "")
		finishCommand(cmd, "")
	}
	app.Action = unknownCommand("", app.Commands)
	return app
}

// unknownCommand is the Action of the app (path "") and of each command
// with subcommands and no action of its own (path its names): without an
// argument it prints the help; with one, which urfave/cli found no command
// for, it is a usage error (exit status 2) naming it, with a suggestion.
// urfave/cli's own answer was "No help topic for 'quer'" and exit status 1.
func unknownCommand(path string, commands []*cli.Command) cli.ActionFunc {
	return func(c *cli.Context) error {
		if !c.Args().Present() {
			if path == "" {
				return cli.ShowAppHelp(c)
			}
			return cli.ShowSubcommandHelp(c)
		}
		name := c.Args().First()
		msg := fmt.Sprintf("unknown command %q", strings.TrimSpace(path+" "+name))
		if s := closestCommand(commands, name); s != "" {
			msg += fmt.Sprintf(". Did you mean %q?", s)
		}
		help := "costpipe --help"
		if path != "" {
			help = "costpipe " + path + " --help"
		}
		return &exitError{code: 2, msg: msg + " (see " + help + ")"}
	}
}

// finishCommand gives cmd and its subcommands what every command has,
// path being the names of cmd's parents:
//   - an environment variable for each visible flag that declares none,
//     named after its command and itself: `reprice --dry-run` reads
//     COSTPIPE_REPRICE_DRY_RUN (flags shared by several commands, the
//     connection flags, --max-event-age, the query flags, declare theirs,
//     one name for all);
//   - the one answer to a flag it cannot take, unless it has its own: exit
//     status 2 and one line naming the flag and the help to read, not
//     "Incorrect Usage" and the whole help page with status 1.
func finishCommand(cmd *cli.Command, path string) {
	path = strings.TrimSpace(path + " " + cmd.Name)
	for _, f := range cmd.Flags {
		v := reflect.ValueOf(f)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			continue
		}
		env, hidden := v.Elem().FieldByName("EnvVars"), v.Elem().FieldByName("Hidden")
		if !env.IsValid() || env.Len() > 0 || !env.CanSet() || hidden.IsValid() && hidden.Bool() {
			continue
		}
		env.Set(reflect.ValueOf([]string{envVarName(path, f.Names()[0])}))
	}
	if cmd.OnUsageError == nil {
		cmd.OnUsageError = usageErrorOf(path)
	}
	if len(cmd.Subcommands) > 0 && cmd.Action == nil {
		cmd.Action = unknownCommand(path, cmd.Subcommands)
	}
	for _, sub := range cmd.Subcommands {
		finishCommand(sub, path)
	}
}

// envVarName is the environment variable finishCommand gives flag name of
// the command at path: COSTPIPE_, the path and the name in upper case,
// words joined by '_'.
func envVarName(path, name string) string {
	return strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_").Replace("costpipe " + path + " " + name))
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

// closestCommand is the name (or alias) of commands nearest to typed, ""
// when none is within half its length in edits (at least 1):
// urfave/cli's suggestion always names one, `Did you mean ""?` among them.
func closestCommand(commands []*cli.Command, typed string) string {
	best, bestD := "", max(len(typed)/2, 1)+1
	for _, c := range commands {
		if c.Hidden || c.Name == "help" {
			continue
		}
		for _, n := range c.Names() {
			if d := editDistance(n, typed); d < bestD {
				best, bestD = n, d
			}
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// plural is "1 event", "2 events": n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
