package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/childproc"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/producers/loadgen"
	"github.com/costpipe/costpipe/schemas"
)

// demoBudget prices a copy of the demo's traffic (the same generator
// options and seed make the same events) and returns the first calendar
// period (UTC) of day, week and month that lasts past until (the end of
// the run) and in which the traffic spends at least demoMinSpend, with
// what it will have spent there by the end of the run: the live budget is
// set below it, so it is crossed while the demo runs.
func demoBudget(gopts loadgen.Options, cat *pricing.Catalog, now, until time.Time) (analytics.Period, float64, error) {
	gen, err := loadgen.New(gopts)
	if err != nil {
		return "", 0, err
	}
	periods := []analytics.Period{analytics.PeriodDay, analytics.PeriodWeek, analytics.PeriodMonth}
	spend := make([]pricing.Pico, len(periods))
	starts := make([]time.Time, len(periods))
	ends := make([]time.Time, len(periods))
	for i, p := range periods {
		starts[i], ends[i] = p.Bounds(now, time.UTC)
	}
	total := int(max(1, gopts.Rate*gopts.Duration.Seconds()+0.5))
	var e schemas.Event
	for range total {
		dups := gen.Counts().Duplicates
		gen.Next(&e)
		if gen.Counts().Duplicates > dups {
			continue // dropped by the aggregator
		}
		c, ok := cat.Total(&e)
		if !ok {
			continue
		}
		for i := range periods {
			if !e.Timestamp.Before(starts[i]) {
				spend[i] = spend[i].Add(c)
			}
		}
	}
	for i, p := range periods {
		// A period that ends during the run would see its budget crossed,
		// if at all, and then resolved.
		if v := spend[i].Float64(); v >= demoMinSpend && ends[i].After(until) {
			return p, v, nil
		}
	}
	return "", 0, nil
}

// demoMinSpend is the least a period's traffic must spend, in USD, for the
// demo's budget: 90% of it rounded down to cents is then at least a cent
// and below it.
const demoMinSpend = 0.02

// demoBudgetAmount is the demo's budget for a period in which the traffic
// spends spend USD: 90% of it, rounded down to cents (rounded to nearest,
// $0.0186 gave a budget of $0.02 that the traffic never reached).
func demoBudgetAmount(spend float64) float64 { return math.Floor(0.9*spend*100) / 100 }

// demoLive is the demo's live `costpipe alerts run`: a process of this
// binary evaluating a rules file every second, delivering to a local
// webhook receiver (which verifies each delivery's Standard Webhooks
// signature independently and prints it) and to the log receiver (its
// lines are the process's stderr, printed with a prefix).
type demoLive struct {
	out   io.Writer
	tty   bool
	start time.Time
	dir   string
	srv   *http.Server
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process's output is read
	once  sync.Once     // stop
	want  []string      // "rule threshold" of the notifications expected

	mu     sync.Mutex
	got    []string // "rule threshold" received, in order
	lines  []string // what was printed about them
	failed []string // deliveries that did not verify
}

// startDemoLive writes the rules (a budget over period at amount USD with
// thresholds 50% and 100%; with growth also a growth rule) and starts the
// receiver and `costpipe alerts run` against the demo's ClickHouse, dsn.
func startDemoLive(c *cli.Context, dsn string, out io.Writer, tty bool, period analytics.Period, amount float64, growth bool) (*demoLive, error) {
	d := &demoLive{out: out, tty: tty, start: time.Now(), done: make(chan struct{})}
	var err error
	if d.dir, err = os.MkdirTemp("", "costpipe-demo-alerts-"); err != nil {
		return nil, err
	}
	key := make([]byte, 24)
	rand.Read(key)
	secrets := filepath.Join(d.dir, "whsec")
	if err := os.WriteFile(secrets, []byte("whsec_"+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		d.close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.close()
		return nil, err
	}
	d.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.receive(key, w, r) }),
		ReadHeaderTimeout: 5 * time.Second}
	go d.srv.Serve(ln)

	rules := fmt.Sprintf(`# written by costpipe demo
interval: 1s
group_wait: 0s
group_interval: 1s
receivers:
  - {name: demo-webhook, type: webhook, url: "http://%s/hook", secrets_file: %q}
  - {name: log, type: log}
rules:
  - {name: %s-budget, kind: budget, period: %s, amount_usd: %.2f, thresholds: [50, 100], notify: [demo-webhook, log]}
`, ln.Addr(), secrets, period, period, amount)
	d.want = []string{string(period) + "-budget 50%", string(period) + "-budget 100%"}
	if growth {
		rules += "  - {name: spend-growth, kind: growth, doubling_days: 14, min_spend_usd: 1, notify: [demo-webhook, log]}\n"
		d.want = append(d.want, "spend-growth ")
	}
	file := filepath.Join(d.dir, "rules.yaml")
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		d.close()
		return nil, err
	}
	if _, err := alerts.ParseConfig(file, []byte(rules)); err != nil {
		d.close()
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		d.close()
		return nil, err
	}
	d.cmd = demoAlertsCommand(c, exe, file, dsn)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		d.close()
		return nil, err
	}
	d.cmd.Stdout = d.cmd.Stderr
	if err := d.cmd.Start(); err != nil {
		d.close()
		return nil, fmt.Errorf("cannot start costpipe alerts run: %w", err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			d.print("alerts run | " + sc.Text())
		}
	}()
	fmt.Fprintf(out, "alerts      costpipe alerts run (pid %d), rules every 1s: %s budget $%.2f (50%%, 100%%)", d.cmd.Process.Pid, period, amount)
	if growth {
		fmt.Fprint(out, ", spend growth doubling faster than 14 days")
	}
	fmt.Fprintf(out, "; to a local signed webhook (%s) and the log\n", ln.Addr())
	return d, nil
}

// print writes one line, over the live progress line on a terminal.
func (d *demoLive) print(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tty {
		fmt.Fprint(d.out, "\r\033[K")
	}
	fmt.Fprintln(d.out, line)
}

// receive is the webhook receiver: it checks the Standard Webhooks
// signature (HMAC-SHA256 of id.timestamp.body under the secret) with its
// own code, then prints the notification.
func (d *demoLive) receive(key []byte, w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	id, ts, sigs := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	ok := false
	for _, s := range strings.Fields(sigs) {
		ok = ok || hmac.Equal([]byte(s), []byte(want))
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	var n struct {
		Type      string  `json:"type"`
		Rule      string  `json:"rule"`
		Kind      string  `json:"kind"`
		Threshold float64 `json:"threshold"`
		Value     float64 `json:"value"`
		Summary   string  `json:"summary"`
	}
	if !ok || err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute || json.Unmarshal(body, &n) != nil {
		d.mu.Lock()
		d.failed = append(d.failed, id)
		d.mu.Unlock()
		http.Error(w, "signature does not verify", http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	th := "" // a budget's threshold, from its summary: "… (41.2%, threshold 50%)"
	if i := strings.LastIndex(n.Summary, "threshold "); n.Kind == "budget" && i >= 0 {
		th = strings.TrimSuffix(n.Summary[i+len("threshold "):], ")")
	}
	line := fmt.Sprintf("%5.1fs  webhook %s %s: %s (signature verified, webhook-id %.12s…)",
		time.Since(d.start).Seconds(), n.Type, n.Rule, n.Summary, id)
	d.print(line)
	d.mu.Lock()
	d.got = append(d.got, n.Rule+" "+th)
	d.lines = append(d.lines, line)
	d.mu.Unlock()
}

// demoAlertsCommand is the demo's `exe alerts run --rules rules` against
// the demo's database, dsn, with the ClickHouse flags of c. They go by
// environment variable, not on the command line, which every user of the
// machine can read (ps): a DSN may hold a password. On Linux the process
// has a process group of its own, so that a Ctrl-C in the terminal reaches
// the demo alone, which stops it (demoLive.stop), and it ends if the demo
// is killed; elsewhere it shares the demo's, so that the terminal's
// signals reach it too (childproc.Tied).
func demoAlertsCommand(c *cli.Context, exe, rules, dsn string) *exec.Cmd {
	env := append(os.Environ(), "COSTPIPE_CLICKHOUSE="+dsn)
	for _, f := range connFlagSpecs() {
		if strings.HasPrefix(f.Name, "clickhouse-") {
			if v := c.String(f.Name); v != "" {
				env = append(env, f.EnvVars[0]+"="+v)
			}
		}
	}
	cmd := exec.Command(exe, "--log-level", "warn", "alerts", "run", "--rules", rules, "--claim-settle", "300ms", "--replica", "demo")
	cmd.Env = env
	cmd.SysProcAttr = childproc.Tied(syscall.SIGTERM)
	return cmd
}

// wait waits until every expected notification arrived, timeout passed or
// ctx ended.
func (d *demoLive) wait(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		d.mu.Lock()
		all := true
		for _, w := range d.want {
			all = all && slices.ContainsFunc(d.got, func(g string) bool { return strings.HasPrefix(g, w) })
		}
		d.mu.Unlock()
		if all || time.Now().After(deadline) {
			return all
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends the process (SIGTERM, as a deployment would) and the receiver.
func (d *demoLive) stop() { d.once.Do(d.stop1) }

func (d *demoLive) stop1() {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { d.cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			d.cmd.Process.Kill()
			<-exited
		}
		<-d.done
	}
	d.close()
}

func (d *demoLive) close() {
	if d.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		d.srv.Shutdown(ctx)
		cancel()
	}
	os.RemoveAll(d.dir)
}

// report prints what the live run delivered.
func (d *demoLive) report(all bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "\nLIVE ALERTS: costpipe alerts run delivered %d signed webhook notifications (each also to the log receiver above)\n", len(d.lines))
	for _, l := range d.lines {
		fmt.Fprintln(d.out, "  "+l)
	}
	if len(d.failed) > 0 {
		fmt.Fprintf(d.out, "  %d deliveries did not verify: %s\n", len(d.failed), strings.Join(d.failed, ", "))
	}
	if !all {
		fmt.Fprintf(d.out, "  expected %s: not all arrived in time (an earlier run on this database may have sent them already: each is sent once per period)\n",
			strings.Join(d.want, ", "))
	}
}

// demoAlerts backtests two rules over the demo's traffic: a daily budget
// at the traffic's average day (so the busier, later days cross it) and a
// growth rule per model, and prints when they would have fired.
func demoAlerts(ctx context.Context, out io.Writer, q *analytics.Querier, from, to time.Time) error {
	total, err := q.Totals(ctx, from, to)
	if err != nil {
		return err
	}
	days := max(to.Sub(from).Hours()/24, 1)
	budget := total.CostUSD.Float64() / days
	if budget <= 0 {
		return nil
	}
	rules := fmt.Sprintf(`rules:
  - {name: daily-budget, kind: budget, period: day, amount_usd: %.2f, thresholds: [80, 100]}
  - {name: model-growth, kind: growth, by: [model], doubling_days: 14, min_spend_usd: 1}
`, budget)
	cfg, err := alerts.ParseConfig("demo-rules.yaml", []byte(rules))
	if err != nil {
		return err
	}
	start := time.Now()
	hist, err := alerts.LoadHistory(ctx, q, cfg, from, to)
	if err != nil {
		return err
	}
	res, err := alerts.Backtest(ctx, cfg, hist, alerts.BacktestOptions{From: from.Truncate(time.Hour), To: to.Truncate(time.Hour), Step: time.Hour})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nALERTS BACKTEST: what these rules would have done over the traffic (costpipe alerts backtest, %s)\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprint(out, "  "+strings.ReplaceAll(strings.TrimSpace(rules), "\n", "\n  ")+"\n")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  RULE\tFIRED\tFIRST\tLAST\tLAST EPISODE")
	for _, r := range res {
		first, last, what := "-", "-", "-"
		if n := len(r.Episodes); n > 0 {
			e := r.Episodes[n-1]
			first, last = r.Episodes[0].Start.UTC().Format("2006-01-02 15:04"), e.Start.UTC().Format("2006-01-02 15:04")
			what = e.Summary
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", r.Rule, len(r.Episodes), first, last, what)
	}
	tw.Flush()
	fmt.Fprintln(out, "  Evaluate continuously and notify: costpipe alerts run --rules rules.yaml (docs/alerts.md)")
	return nil
}
