package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/pipelines/pricing/litellm"
)

const pricesImportUsage = "usage: costpipe prices import --format litellm [--from DATE] [--source TEXT] [--strict] [-o FILE] FILE|-"

func pricesImportCommand() *cli.Command {
	return &cli.Command{
		Name:        "import",
		Usage:       "write a price catalog from LiteLLM's community price list",
		ArgsUsage:   "FILE|-",
		Description: pricesImportDescription(),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "litellm",
				Usage: "`FORMAT` of the price list: litellm (LiteLLM's model_prices_and_context_window.json), the only one"},
			&cli.StringFlag{Name: "from",
				Usage: "`DATE` (YYYY-MM-DD or RFC 3339) from which every imported price applies (default: 1970-01-01, all history)"},
			&cli.StringFlag{Name: "source",
				Usage: "the catalog's `TEXT` source, shown by prices list (default: " + litellm.DefaultSource + ")"},
			&cli.BoolFlag{Name: "strict",
				Usage: "fail on a price with more than 12 fraction digits per 1M tokens instead of rounding it"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, TakesFile: true,
				Usage: "write the catalog to `FILE` (replaced atomically) instead of stdout"},
		},
		Action: pricesImport,
	}
}

// pricesImportDescription is the help of prices import: what is read and
// how, with the importer's own tables of fields and providers.
func pricesImportDescription() string {
	var b strings.Builder
	b.WriteString(`Reads LiteLLM's model_prices_and_context_window.json (FILE, or - for stdin; at
most 64 MiB) and writes a price catalog in YAML to stdout or --output, and a
summary on stderr. The catalog format is in docs/contracts.md §2; check the
result with "costpipe prices check FILE" and use it with --prices FILE. Entries
are sorted by provider and model: importing the same list twice gives the same
bytes. LiteLLM's list has no effective dates: every price applies from --from.

Imported: every entry with an input_cost_per_token or a tiered_pricing table
of token ranges; the others (priced per image, second, character, query …)
are skipped and counted on stderr. Prices are USD per token, converted
exactly (on the JSON text, never through floating point) to USD per 1M tokens
(input_cost_per_request: USD per call):
`)
	for _, f := range litellm.FieldNames() {
		fmt.Fprintf(&b, "  %-42s -> %s\n", f[0], f[1])
	}
	b.WriteString(`  input_cost_per_token_cache_hit             -> cached_input, when the entry has
                                                no cache_read_input_token_cost
  <field>_above_<N>k_tokens                  -> long-context tier above N·1000
  <field>_above_<N>_tokens                   -> long-context tier above N
  <field>_flex, _priority, _batches          -> service tiers flex, priority, batch
A price with more than 12 fraction digits per 1M tokens (a float artefact such
as 2.9999900000000002e-06) is rounded half to even to 12 digits (2.99999) and
listed on stderr; with --strict it is an error.

Provider: the entry's litellm_provider, renamed:
`)
	for _, p := range litellm.ProviderRenames() {
		fmt.Fprintf(&b, "  %-30s -> %s\n", p[0], p[1])
	}
	b.WriteString(`Model: the key without its first path segment when that names the provider
(gemini/gemini-2.5-pro -> google gemini-2.5-pro); when two keys get the same
provider and name, the key without a prefix (else the first) keeps it and the
other is named by its full key. Each entry's source is litellm:<key>.

Exit status: 0 written, 1 the list cannot be imported (nothing is written),
2 usage error.`)
	return b.String()
}

func pricesImport(c *cli.Context) error {
	fl, args, helped, uerr := lateArgs(c)
	if uerr != nil {
		uerr.msg += "\n" + pricesImportUsage
		return uerr
	}
	if helped {
		return nil
	}
	if f := fl.String("format"); f != "litellm" {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --format %q: the only format is litellm (LiteLLM's model_prices_and_context_window.json)", f)}
	}
	if len(args) != 1 {
		return &exitError{code: 2, msg: pricesImportUsage}
	}
	opts := litellm.Options{Source: fl.String("source"), Strict: fl.Bool("strict")}
	if s := fl.String("from"); s != "" {
		t, err := parseAt(s)
		if err != nil {
			return &exitError{code: 2, msg: "--from: " + err.Error()}
		}
		opts.From = t
	}
	if err := opts.Validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	name := args[0]
	in := c.App.Reader
	if in == nil {
		in = os.Stdin
	}
	if name == "-" {
		name = "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("cannot open the price list: %v", err)}
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > litellm.MaxInputBytes {
			return &exitError{code: 1, msg: fmt.Sprintf("%s: cannot import the LiteLLM price list: %d bytes, larger than %d", name, st.Size(), litellm.MaxInputBytes)}
		}
		in = f
	}
	res, err := litellm.Import(in, opts)
	if err != nil {
		return importFailure(c.App.ErrWriter, name, err)
	}
	output := fl.String("output")
	if output == "" {
		if _, err := c.App.Writer.Write(res.YAML); err != nil {
			return fmt.Errorf("cannot write the catalog: %w", err)
		}
	} else if err := writeFileAtomic(output, res.YAML); err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("cannot write the catalog: %v", err)}
	}
	printImportSummary(c.App.ErrWriter, name, output, res)
	return nil
}

// lateFlags are a command's flags given after its first argument, which
// urfave/cli v2 leaves as arguments (`prices import FILE -o out.yaml`):
// parsed again here, they win over the same flags given before it.
type lateFlags struct {
	c   *cli.Context
	set *flag.FlagSet
}

// parseLateFlags parses the command's flags among its arguments and
// returns them and the other arguments. "-" is an argument; after "--"
// everything is.
func parseLateFlags(c *cli.Context) (lateFlags, []string, error) {
	set := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if err := f.Apply(set); err != nil {
			return lateFlags{}, nil, err
		}
	}
	args := c.Args().Slice()
	// What followed a "--" that urfave/cli consumed is arguments, whatever
	// it looks like (`prices cost -- -odd.jsonl`).
	var tail []string
	if n := afterDashes(os.Args, args); n > 0 {
		args, tail = args[:len(args)-n], args[len(args)-n:]
	}
	var pos []string
	for len(args) > 0 {
		switch a := args[0]; {
		case a == "--":
			return lateFlags{c, set}, append(append(pos, args[1:]...), tail...), nil
		case a == "-" || !strings.HasPrefix(a, "-"):
			pos = append(pos, a)
			args = args[1:]
			continue
		}
		if err := set.Parse(args); err != nil {
			return lateFlags{}, nil, err
		}
		rest := set.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return lateFlags{c, set}, append(append(pos, rest...), tail...), nil
		}
		args = rest
	}
	return lateFlags{c, set}, append(pos, tail...), nil
}

// afterDashes is how many of args, a command's arguments as urfave/cli
// gives them, followed the first "--" of the command line raw (os.Args):
// urfave/cli drops that "--", and what came after it must not be read as
// flags.
func afterDashes(raw, args []string) int {
	i := slices.Index(raw[min(1, len(raw)):], "--")
	if i < 0 {
		return 0
	}
	tail := raw[i+2:]
	if len(tail) > len(args) || !slices.Equal(args[len(args)-len(tail):], tail) {
		return 0
	}
	return len(tail)
}

// lateArgs is parseLateFlags for a command's Action: a flag it cannot
// parse is a usage error (exit status 2) naming it as --flag, and --help
// given among the arguments prints the command's help (helped).
func lateArgs(c *cli.Context) (fl lateFlags, args []string, helped bool, err *exitError) {
	fl, args, perr := parseLateFlags(c)
	if perr != nil {
		return fl, nil, false, &exitError{code: 2, msg: goFlagName.ReplaceAllString(perr.Error(), "$1--$2")}
	}
	if fl.given("help") {
		cli.HelpPrinter(c.App.Writer, cli.CommandHelpTemplate, c.Command)
		return fl, args, true, nil
	}
	return fl, args, false, nil
}

// late returns the flag of name (or one of its aliases) given late.
func (l lateFlags) late(name string) *flag.Flag {
	for _, f := range l.c.Command.Flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		var found *flag.Flag
		l.set.Visit(func(v *flag.Flag) {
			if slices.Contains(f.Names(), v.Name) {
				found = v
			}
		})
		return found
	}
	return nil
}

func (l lateFlags) given(name string) bool { return l.late(name) != nil || l.c.Bool(name) }

// String is the value of a string flag, given late or not.
func (l lateFlags) String(name string) string {
	if f := l.late(name); f != nil {
		return f.Value.String()
	}
	return l.c.String(name)
}

// Bool is the value of a bool flag, given late or not.
func (l lateFlags) Bool(name string) bool {
	if f := l.late(name); f != nil {
		return f.Value.String() == "true"
	}
	return l.c.Bool(name)
}

// importFailure prints every problem Import reported and returns the exit
// error (status 1).
func importFailure(w io.Writer, name string, err error) error {
	problems := unjoin(err)
	if len(problems) == 1 {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %v", name, err)}
	}
	inexact := false
	for _, p := range problems {
		fmt.Fprintln(w, p)
		var ie *litellm.InexactError
		inexact = inexact || errors.As(p, &ie)
	}
	msg := fmt.Sprintf("%s: %d problem(s); nothing written", name, len(problems))
	if inexact {
		msg += " (without --strict, prices with more than 12 fraction digits are rounded)"
	}
	return &exitError{code: 1, msg: msg}
}

// printImportSummary reports on w what the import did.
func printImportSummary(w io.Writer, name, output string, res *litellm.Result) {
	s := res.Stats
	to := "stdout"
	if output != "" {
		to = output
	}
	fmt.Fprintf(w, "imported %d of the %d entries of %s to %s: %d from tiered_pricing tables, %d with long-context tiers",
		s.Imported, s.Entries, name, to, s.FromTieredPricing, s.WithLongContext)
	if len(s.WithServiceTier) > 0 {
		fmt.Fprintf(w, ", with service tiers %s", countList(s.WithServiceTier))
	}
	fmt.Fprintln(w)
	skipped := 0
	for _, n := range s.Skipped {
		skipped += n
	}
	if skipped > 0 {
		fmt.Fprintf(w, "skipped %d entries without per-token prices\n  by reason: %s\n  by mode: %s\n",
			skipped, countList(s.Skipped), countList(s.SkippedByMode))
	}
	if len(s.Conflicts) > 0 {
		fmt.Fprintf(w, "%d name conflicts (the loser is named by its full key):\n", len(s.Conflicts))
		for _, cf := range s.Conflicts {
			same := "different prices"
			if cf.SamePrices {
				same = "same prices"
			}
			fmt.Fprintf(w, "  %s %s: %s wins, %s keeps its key (%s)\n", litellm.DisplayKey(cf.Provider), litellm.DisplayKey(cf.Model),
				litellm.DisplayKey(cf.Winner), litellm.DisplayKey(cf.Loser), same)
		}
	}
	if n := len(s.CacheHitAsCacheRead); n > 0 {
		fmt.Fprintf(w, "%d entries take their cached_input from input_cost_per_token_cache_hit\n", n)
	}
	if n := len(s.AnthropicCacheWrite1h); n > 0 {
		fmt.Fprintf(w, "%d Claude entries without cache_creation_input_token_cost_above_1hr take cache_write_1h = 2 × input, as Anthropic bills 1-hour cache writes\n", n)
	}
	if n := len(s.CacheHitMismatches); n > 0 {
		fmt.Fprintf(w, "%d entries have an input_cost_per_token_cache_hit that is not their cache_read_input_token_cost (ignored)\n", n)
	}
	if n := len(s.Rounded); n > 0 {
		fmt.Fprintf(w, "rounded %d prices half to even to 12 fraction digits per 1M tokens (the list's USD per token -> the catalog's; --strict refuses them):\n", n)
		for _, line := range litellm.RoundedLines(s.Rounded) {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

// countList writes counts as "a 3, b 1", largest first, then by name.
func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over path, so that a reader sees the old
// file or the new one, never a part. The file keeps the mode of the one it
// replaces (0644 when new).
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		mode = st.Mode().Perm()
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if tmp != "" {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	tmp = ""
	if d, err := os.Open(dir); err == nil { // make the rename durable; best effort
		d.Sync()
		d.Close()
	}
	return nil
}
