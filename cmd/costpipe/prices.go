package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/producers"
	"github.com/costpipe/costpipe/schemas"
)

// loadCatalog returns the catalog named by --prices, or the embedded default.
func loadCatalog(c *cli.Context) (*pricing.Catalog, error) {
	return loadCatalogFile(c.App.ErrWriter, c.String("prices"))
}

// loadCatalogFile returns the catalog in the file path ("": the embedded
// default); an error names --prices. What is valid but likely a mistake
// (a provider in providers without models) is a warning on w.
func loadCatalogFile(w io.Writer, path string) (*pricing.Catalog, error) {
	if path == "" {
		return pricing.Default(), nil
	}
	cat, err := pricing.Load(path)
	if err != nil {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("cannot load --prices %s:\n%v", path, err)}
	}
	for _, p := range cat.ProviderProblems() {
		fmt.Fprintf(w, "costpipe: warning: %s\n", p)
	}
	return cat, nil
}

func pricesCommand() *cli.Command {
	formatFlag := &cli.StringFlag{Name: "format", Value: "table", Usage: "output format: table or json"}
	return &cli.Command{
		Name:  "prices",
		Usage: "inspect and check price catalogs, and price events",
		Description: `The catalog is the embedded default (generated from LiteLLM's community price
list, with costpipe's overrides), or the YAML file given with --prices. Amounts
are USD per 1M tokens, except gpu_hour (per GPU-hour) and request (per call).`,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the models of the catalog with the price in effect at --at",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "at", Usage: "`TIME` (RFC 3339 or YYYY-MM-DD) at which prices apply (default: now)"},
					&cli.StringFlag{Name: "provider", Usage: "only this provider"},
					formatFlag,
				},
				Action: pricesList,
			},
			{
				Name:      "check",
				Usage:     "validate a price catalog file and report every problem",
				ArgsUsage: "FILE",
				Action:    pricesCheck,
			},
			{
				Name:      "diff",
				Usage:     "show what changed between two catalogs: models added, removed, and every rate that differs",
				ArgsUsage: "OLD NEW",
				Description: `OLD and NEW are catalog files, or "default" for the embedded catalog. The
prices in effect at --at are compared, with their long-context tiers and
service tiers, rate by rate (the rate a call pays, defaults applied). An entry
that prices alike at --at but differently in another period (a corrected past
price, a future one, a model only one catalog has from a later date) is listed
as "other period" with the first date at which the two differ; --exit-code counts
it. A tenant discount added, removed or changed is a "changed" row of provider
"(tenant)". Among a provider's regexes the first in file order wins, so a regex
whose place among the regexes both catalogs have moved is a "reordered" row
(its rank before and after), counted as changed.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "at", Usage: "`TIME` (RFC 3339 or YYYY-MM-DD) at which prices are compared (default: now)"},
					&cli.BoolFlag{Name: "exit-code", Usage: "exit with status 1 when the catalogs differ"},
					formatFlag,
				},
				Action: pricesDiff,
			},
			{
				Name:  "coverage",
				Usage: "models seen in the rollups that the catalog does not price, prices by a regex or at a stale price",
				Description: `Reads the usage of the last --since from ClickHouse by provider, model and
service tier, and classifies each under the catalog (--prices or the embedded
one): unpriced (no entry), regex (priced by a match entry, check it is the
right one), service_tier (no price for that service tier: charged the standard
rates), stale (the price, or the catalog's updated date, is older than
--stale-after), ok. Only problems are listed unless --all.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "since", Value: "7d", Usage: "how far back to read usage, a Go `DURATION` or days (7d)"},
					&cli.StringFlag{Name: "stale-after", Value: "180d", Usage: "a price older than this `DURATION` is stale"},
					&cli.BoolFlag{Name: "all", Usage: "list every model, not only problems"},
					formatFlag,
				},
				Action: pricesCoverage,
			},
			{
				Name:      "cost",
				Usage:     "price JSON-lines events (stdin or FILE) with a cost breakdown",
				ArgsUsage: "[FILE|-]",
				Flags:     []cli.Flag{formatFlag},
				Action:    pricesCost,
			},
			pricesImportCommand(),
		},
	}
}

// usd renders a Pico amount for people: trailing zeros trimmed, at least two
// fraction digits.
func usd(p pricing.Pico) string {
	s := p.String()
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = strings.TrimRight(s, "0")
		if len(s)-i-1 < 2 {
			s += strings.Repeat("0", 2-(len(s)-i-1))
		}
	}
	return s
}

func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot parse time %q: want RFC 3339 (2026-11-28T10:00:00Z) or YYYY-MM-DD", s)
	}
	return t.UTC(), nil
}

type priceRow struct {
	Provider     string    `json:"provider"`
	Model        string    `json:"model,omitempty"`
	Match        string    `json:"match,omitempty"`
	Source       string    `json:"source,omitempty"`
	From         time.Time `json:"from"`
	Input        string    `json:"input"`
	CachedInput  string    `json:"cached_input"`
	CacheWrite   string    `json:"cache_write"`
	CacheWrite1h string    `json:"cache_write_1h"`
	Output       string    `json:"output"`
	Reasoning    string    `json:"reasoning"`
	GPUHour      string    `json:"gpu_hour"`
	Request      string    `json:"request"`
	// Tiers are the long-context tiers' effective standard rates.
	Tiers []tierRow `json:"tiers,omitempty"`
	// ServiceTiers maps each service tier to its effective rates below
	// every long-context tier.
	ServiceTiers map[string]map[string]string `json:"service_tiers,omitempty"`
}

type tierRow struct {
	Above int64             `json:"above"`
	Rates map[string]string `json:"rates"`
}

// rateMap is r by catalog field name.
func rateMap(r pricing.Rates) map[string]string {
	m := map[string]string{}
	for i, v := range r.Values() {
		m[rateNames[i]] = usd(v)
	}
	return m
}

func pricesList(c *cli.Context) error {
	cat, err := loadCatalog(c)
	if err != nil {
		return err
	}
	at, err := parseAt(c.String("at"))
	if err != nil {
		return &exitError{code: 2, msg: "--at: " + err.Error()}
	}
	rows := []priceRow{} // JSON [] when nothing matches, as diff and coverage
	for _, e := range cat.Entries() {
		if p := c.String("provider"); p != "" && e.Provider != p {
			continue
		}
		pr, ok := e.PriceAt(at)
		if !ok {
			continue // not yet in effect at --at
		}
		row := priceRow{Provider: e.Provider, Model: e.Model, Match: e.Match, Source: e.Source, From: pr.From,
			Input: usd(pr.Input), CachedInput: usd(pr.CachedInput), CacheWrite: usd(pr.CacheWrite), CacheWrite1h: usd(pr.CacheWrite1h),
			Output: usd(pr.Output), Reasoning: usd(pr.Reasoning), GPUHour: usd(pr.GPUHour), Request: usd(pr.Request)}
		for _, t := range pr.Tiers {
			r, _, _ := pr.RatesFor("", t.Above+1)
			row.Tiers = append(row.Tiers, tierRow{Above: t.Above, Rates: rateMap(r)})
		}
		for _, st := range pr.ServiceTierNames() {
			if row.ServiceTiers == nil {
				row.ServiceTiers = map[string]map[string]string{}
			}
			r, _, _ := pr.RatesFor(st, 0)
			row.ServiceTiers[st] = rateMap(r)
		}
		rows = append(rows, row)
	}
	switch c.String("format") {
	case "json":
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "table":
		tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROVIDER\tMODEL\tFROM\tINPUT\tCACHED\tCACHE_WRITE\tCACHE_WRITE_1H\tOUTPUT\tREASONING\tGPU_HOUR\tREQUEST\tLONG CONTEXT\tSERVICE TIERS\t")
		for _, r := range rows {
			name := r.Model
			if name == "" {
				name = "~" + r.Match
			}
			lc := "-"
			if len(r.Tiers) > 0 {
				var parts []string
				for _, t := range r.Tiers {
					parts = append(parts, fmt.Sprintf(">%dk: %s/%s", t.Above/1000, t.Rates["input"], t.Rates["output"]))
				}
				lc = strings.Join(parts, " ")
			}
			sts := "-"
			if len(r.ServiceTiers) > 0 {
				var names []string
				for n := range r.ServiceTiers {
					names = append(names, n)
				}
				slices.Sort(names)
				sts = strings.Join(names, ",")
			}
			from := r.From.UTC().Format(time.DateOnly) // a price from midnight UTC, as most are
			if !r.From.UTC().Truncate(24 * time.Hour).Equal(r.From) {
				from = r.From.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Provider, name, from,
				r.Input, r.CachedInput, r.CacheWrite, r.CacheWrite1h, r.Output, r.Reasoning, r.GPUHour, r.Request, lc, sts)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%d models in %s at %s; USD per 1M tokens (~ = regex match; long context: input/output above N input tokens)\n",
			len(rows), cat.Name(), at.Format(time.RFC3339))
		if cat.Source() != "" || cat.Updated() != "" {
			fmt.Fprintf(c.App.Writer, "source: %s; updated: %s\n", orDash(cat.Source()), orDash(cat.Updated()))
		}
		return nil
	default:
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --format %q: want table or json", c.String("format"))}
	}
}

func pricesCheck(c *cli.Context) error {
	if c.NArg() != 1 {
		return &exitError{code: 2, msg: "usage: costpipe prices check FILE"}
	}
	path := c.Args().First()
	cat, err := pricing.Load(path)
	if err != nil {
		var problems []string
		for _, e := range unjoin(err) {
			problems = append(problems, e.Error())
		}
		for _, p := range problems {
			fmt.Fprintln(c.App.ErrWriter, p)
		}
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %d problem(s)", path, len(problems))}
	}
	prices := 0
	for _, e := range cat.Entries() {
		prices += len(e.Prices)
	}
	fmt.Fprintf(c.App.Writer, "%s: ok: %d models, %d prices, %d tenant discounts\n", path, len(cat.Entries()), prices, len(cat.Tenants()))
	// Valid for pricing each call, but not from the rollups' sums.
	for _, p := range cat.SumsProblems() {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s: calls are priced right, but query usage --reprice and costpipe reprice refuse this catalog\n", p)
	}
	for _, p := range cat.ProviderProblems() {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", p)
	}
	return nil
}

// unjoin flattens an errors.Join tree into its leaves.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type costRow struct {
	Line         int    `json:"line"`
	EventID      string `json:"event_id,omitempty"`
	Tenant       string `json:"tenant,omitempty"`
	Provider     string `json:"provider,omitempty"`
	Model        string `json:"model,omitempty"`
	Priced       bool   `json:"priced"`
	Reason       string `json:"reason,omitempty"`
	Entry        string `json:"entry,omitempty"`
	PriceFrom    string `json:"price_from,omitempty"`
	Input        string `json:"input_usd"`
	CachedInput  string `json:"cached_input_usd"`
	CacheWrite   string `json:"cache_write_usd"`
	CacheWrite1h string `json:"cache_write_1h_usd"`
	ServiceTier  string `json:"service_tier,omitempty"`        // the event's, normalized
	PricedTier   string `json:"priced_service_tier,omitempty"` // whose rates applied
	LongContext  int64  `json:"long_context_above,omitempty"`  // the tier applied
	Output       string `json:"output_usd"`
	Reasoning    string `json:"reasoning_usd"`
	GPU          string `json:"gpu_usd"`
	Request      string `json:"request_usd"`
	List         string `json:"list_usd"`
	Discount     string `json:"discount_usd"`
	Total        string `json:"cost_usd"`
	Error        string `json:"error,omitempty"`
}

func pricesCost(c *cli.Context) error {
	// Flags after the file (`prices cost events.jsonl --prices x.yaml`),
	// which urfave/cli leaves as arguments, count as before it.
	fl, args, helped, uerr := lateArgs(c)
	if uerr != nil {
		return uerr
	}
	if helped {
		return nil
	}
	if len(args) > 1 {
		return &exitError{code: 2, msg: fmt.Sprintf("prices cost takes one FILE (or - for stdin), got %d: %s", len(args), strings.Join(args, " "))}
	}
	cat, err := loadCatalogFile(c.App.ErrWriter, fl.String("prices"))
	if err != nil {
		return err
	}
	format := fl.String("format")
	if format != "table" && format != "json" {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --format %q: want table or json", format)}
	}
	var in io.Reader = os.Stdin
	if len(args) == 1 && args[0] != "-" {
		fh, err := os.Open(args[0])
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("cannot open input: %v", err)}
		}
		defer fh.Close()
		in = fh
	}
	out := bufio.NewWriter(c.App.Writer)
	defer out.Flush()
	jenc := json.NewEncoder(out)
	var tw *tabwriter.Writer
	if format == "table" {
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LINE\tTENANT\tPROVIDER\tMODEL\tTIER\tINPUT\tCACHED\tCACHE_WRITE\tOUTPUT\tREASONING\tGPU\tREQUEST\tDISCOUNT\tCOST_USD\t")
	}
	var total pricing.Pico
	var n, unpriced, invalid int
	dec := schemas.NewDecoder()
	var ev schemas.Event
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), producers.MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		if err := dec.Decode(sc.Bytes(), &ev); err != nil {
			invalid++
			fmt.Fprintf(c.App.ErrWriter, "line %d: %v\n", line, err)
			if format == "json" {
				_ = jenc.Encode(costRow{Line: line, Error: err.Error()})
			}
			continue
		}
		q := cat.Cost(&ev)
		n++
		total = total.Add(q.Total)
		r := costRow{Line: line, EventID: ev.EventID, Tenant: ev.Tenant, Provider: ev.Provider, Model: ev.Model,
			Priced: q.Priced, Reason: q.Reason,
			Input: q.Input.String(), CachedInput: q.CachedInput.String(), CacheWrite: q.CacheWrite.String(),
			CacheWrite1h: q.CacheWrite1h.String(), ServiceTier: q.ServiceTier, PricedTier: q.PricedServiceTier, LongContext: q.Tier,
			Output: q.Output.String(), Reasoning: q.Reasoning.String(), GPU: q.GPU.String(), Request: q.Request.String(),
			List: q.List.String(), Discount: q.Discount.String(), Total: q.Total.String()}
		if q.Entry != nil {
			r.Entry = q.Entry.Name()
			r.PriceFrom = q.From.Format(time.RFC3339)
		}
		if !q.Priced {
			unpriced++
		}
		if format == "json" {
			if err := jenc.Encode(r); err != nil {
				return err
			}
			continue
		}
		cost := usd(q.Total)
		if !q.Priced {
			cost = "unpriced: " + q.Reason
		}
		tier := orDash(q.PricedServiceTier)
		if q.ServiceTier != q.PricedServiceTier {
			tier = q.ServiceTier + "→standard"
		}
		if q.Tier > 0 {
			tier += fmt.Sprintf(" >%dk", q.Tier/1000)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", line, ev.Tenant, ev.Provider, ev.Model, tier,
			usd(q.Input), usd(q.CachedInput), usd(q.CacheWrite.Add(q.CacheWrite1h)), usd(q.Output), usd(q.Reasoning), usd(q.GPU), usd(q.Request), usd(q.Discount), cost)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line %d is longer than %d bytes", line+1, producers.MaxLineBytes)
		}
		return fmt.Errorf("cannot read events: %w", err)
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.App.ErrWriter, "%s, total %s USD (%d unpriced); %s\n", plural(n, "event"), total.String(), unpriced, plural(invalid, "invalid line"))
	if invalid > 0 {
		return &exitError{code: 1}
	}
	return nil
}
