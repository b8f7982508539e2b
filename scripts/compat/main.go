// Command compat checks that the SQL costpipe sends works on a current
// ClickHouse as it does on the 18.16 the tests run: it replays every
// statement a costpipe run sent to an 18.16 server (that server's
// system.query_log) on ClickHouse 26.5 embedded as a library (libchdb), in
// UTC, Europe/Berlin and America/New_York, and on the 18.16 server itself in
// UTC, in a fresh database each, and compares the answers of every
// statement. scripts/check-clickhouse-current.sh makes the run to replay and
// calls it; docs/operations.md says what it covers.
//
//	go run ./scripts/compat -fetch DIR                 # download libchdb into DIR
//	go run ./scripts/compat -http URL -src DB -dst DB -runner PATH -work DIR
//
// Inserts costpipe sent in Native format carry no SQL data; the replay
// inserts 20 synthetic rows instead, typed from the 18.16 server's
// system.columns (a unique application per row, so no two share a rollup
// key), and no table merges on either server: the materialized views and the
// queries after them see the same rows on both. Answers are compared row by
// row after sorting (a query without ORDER BY may return its rows in any
// order) and with trailing zeros of decimals removed (18.16 prints
// Decimal(38, 12) with all 12 digits, current releases without the trailing
// zeros; costpipe parses both). DESCRIBE is compared on names and types
// (current releases add columns), and the sizes of parts on disk are not
// compared.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The libchdb build the check runs on: the npm package the chdb project
// publishes for linux-x64 (Apache-2.0), pinned by version and integrity.
const (
	chdbVersion   = "26.5.3" // embeds ClickHouse 26.5.1
	chdbURL       = "https://registry.npmjs.org/@chdb/lib-linux-x64-gnu/-/lib-linux-x64-gnu-" + chdbVersion + ".tgz"
	chdbIntegrity = "sha512-fPrLmRt5Moor9yGz4mazbrNje4t7X9KB2mTGkXFWRxRBs2iKy8yh6jx11xsa0Qr3iDFMU/yHqd+bVdYJXu3QaQ=="
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("compat: ")
	fetch := flag.String("fetch", "", "download libchdb.so into `DIR` (kept when already there) and exit")
	api := flag.String("api", "", "GET every question of the HTTP API from costpipe serve at `URL` (with -key) and exit")
	key := flag.String("key", "", "the API `KEY` of -api")
	httpURL := flag.String("http", "", "HTTP `URL` of the 18.16 server costpipe ran against")
	src := flag.String("src", "", "`DB` costpipe used there (its queries are replayed)")
	dst := flag.String("dst", "", "`DB` the replay creates on both servers (dropped first on 18.16)")
	runner := flag.String("runner", "", "`PATH` of the built chdb_runner")
	work := flag.String("work", "", "`DIR` for the replay, both answers and the embedded server's data")
	flag.Parse()
	if *fetch != "" {
		if err := fetchChdb(*fetch); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *api != "" {
		if err := askAPI(*api, *key); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *httpURL == "" || *src == "" || *dst == "" || *runner == "" || *work == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(&server{url: *httpURL}, *src, *dst, *runner, *work); err != nil {
		log.Fatal(err)
	}
}

// fetchChdb downloads and checks the pinned libchdb package and keeps only
// its library.
func fetchChdb(dir string) error {
	lib := filepath.Join(dir, "libchdb.so")
	if _, err := os.Stat(lib); err == nil {
		return nil
	}
	var body []byte
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if body, err = get(chdbURL); err == nil {
			break
		}
		log.Printf("download %d of 3 failed: %v", attempt, err)
		time.Sleep(time.Duration(attempt) * 5 * time.Second)
	}
	if err != nil {
		return err
	}
	sum := sha512.Sum512(body)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != chdbIntegrity {
		return fmt.Errorf("%s: integrity %s, want %s", chdbURL, got, chdbIntegrity)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", chdbURL, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return fmt.Errorf("%s: no package/libchdb.so in it: %w", chdbURL, err)
		}
		if h.Name != "package/libchdb.so" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		f, err := os.CreateTemp(dir, "libchdb-*.so")
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		log.Printf("libchdb %s (ClickHouse 26.5) in %s", chdbVersion, dir)
		return os.Rename(f.Name(), lib)
	}
}

func get(u string) ([]byte, error) {
	c := &http.Client{Timeout: 5 * time.Minute}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// apiQuestions are the HTTP API's questions the run asks costpipe serve, so
// that their SQL is replayed too (docs/serve.md): every endpoint, and the
// dashboard's batch.
var apiQuestions = []string{
	"usage?since=30d&by=tenant,model", "latency?since=24h&by=model&step=1h",
	"top?since=7d&by=tenant&metric=requests&limit=5", "series?since=24h&step=1h&by=model",
	"growth?by=model&window=28", "forecast?by=tenant&budget=5000", "forecast?horizon=24h",
	"prices?since=30d", "alerts", "alerts/notifications?since=24h",
	"batch?q=usage%3Fsince%3D24h&q=top%3Fby%3Dmodel",
}

// askAPI asks base every apiQuestion and requires a 200 to each.
func askAPI(base, key string) error {
	c := &http.Client{Timeout: time.Minute}
	for _, q := range apiQuestions {
		req, err := http.NewRequest(http.MethodGet, base+"/api/v1/"+q, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /api/v1/%s: %s: %s", q, resp.Status, body)
		}
	}
	return nil
}

// server is ClickHouse's HTTP interface: answers in TabSeparated, the format
// the runner asks libchdb for.
type server struct{ url string }

func (s *server) query(q string) (string, error) {
	resp, err := http.Post(s.url+"/?"+url.Values{"default_format": {"TabSeparated"}}.Encode(), "text/plain", strings.NewReader(q))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s", strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// answer is what a server said to one statement.
type answer struct {
	ok  bool
	out string // the rows, or the error
}

func run(s *server, src, dst, runner, work string) error {
	stmts, err := replay(s, src, dst)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "replay.sql"), []byte(strings.Join(stmts, ";\n\n")+";\n"), 0o644); err != nil {
		return err
	}
	log.Printf("replaying %d statements of %s as %s", len(stmts), src, dst)

	if _, err := s.query("DROP DATABASE IF EXISTS " + dst); err != nil {
		return fmt.Errorf("18.16: %w", err)
	}
	old := make([]answer, len(stmts))
	for i, q := range stmts {
		out, err := s.query(q)
		old[i] = answer{err == nil, out}
		if err != nil {
			old[i].out = err.Error()
			continue
		}
		if c := stopMerges(q); c != "" {
			if _, err := s.query(c); err != nil {
				return fmt.Errorf("18.16: %s: %w", c, err)
			}
		}
	}

	failed := 0
	for _, zone := range zones {
		cur, err := runChdb(runner, filepath.Join(work, "chdb-data"), zone, stmts)
		if err != nil {
			return err
		}
		for i, q := range stmts {
			head := strings.SplitN(q, "\n", 2)[0]
			switch {
			case !old[i].ok:
				failed++
				log.Printf("statement %d fails on 18.16 (the replay's order or its synthetic rows are wrong): %s\n    %s", i, head, old[i].out)
			case !cur[i].ok:
				failed++
				log.Printf("statement %d fails on ClickHouse 26.5 in %s: %s\n    %s", i, zone, head, cur[i].out)
			case skipCompare.MatchString(q):
			default:
				a, b := normalize(q, old[i].out), normalize(q, cur[i].out)
				if !slices.Equal(a, b) {
					failed++
					log.Printf("statement %d answers differently on 26.5 in %s: %s\n    18.16: %.300q\n    26.5:  %.300q", i, zone, head, strings.Join(a, " | "), strings.Join(b, " | "))
				}
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d statements fail or answer differently on ClickHouse 26.5 in %s and on 18.16 in UTC (replay in %s)", failed, len(stmts), zone, filepath.Join(work, "replay.sql"))
		}
		log.Printf("all %d statements run on ClickHouse 26.5 in %s with the answers of 18.16 in UTC", len(stmts), zone)
	}
	return nil
}

// zones are the server time zones the replay runs in on 26.5: costpipe's
// SQL names UTC wherever a time is read or bucketed, so a server in another
// zone must answer as 18.16 does in UTC (many servers run in Europe/* or
// America/*; docs/design.md, "Time zone: UTC in the column types").
var zones = []string{"UTC", "Europe/Berlin", "America/New_York"}

// runChdb replays stmts on a fresh embedded server whose time zone is zone
// (libchdb takes the process's TZ) and returns its answers.
func runChdb(runner, data, zone string, stmts []string) ([]answer, error) {
	if err := os.RemoveAll(data); err != nil {
		return nil, err
	}
	// The same control statements as on 18.16, plus no merging inside an
	// insert (18.16 never does); their answers are not compared.
	all, orig := []string{"SET optimize_on_insert = 0"}, []int{-1}
	for i, q := range stmts {
		all, orig = append(all, q), append(orig, i)
		if c := stopMerges(q); c != "" {
			all, orig = append(all, c), append(orig, -1)
		}
	}
	var in bytes.Buffer
	for _, q := range all {
		in.WriteString(q)
		in.WriteByte(0)
	}
	cmd := exec.Command(runner, data)
	cmd.Env = append(os.Environ(), "TZ="+zone)
	cmd.Stdin, cmd.Stderr = &in, os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", runner, zone, err)
	}
	got, err := parseRunner(raw, len(all))
	if err != nil {
		return nil, err
	}
	out := make([]answer, 0, len(stmts))
	for j, a := range got {
		switch {
		case orig[j] >= 0:
			out = append(out, a)
		case !a.ok && (j == 0 || out[len(out)-1].ok): // a control after a failed CREATE may fail too
			return nil, fmt.Errorf("26.5 in %s: %s: %s", zone, all[j], a.out)
		}
	}
	return out, nil
}

// stopMerges returns the statement that stops background merges in the
// table q creates, or "" when q creates none. Merges run whenever each
// server gets to them, and a table whose rows share a key (a
// ReplacingMergeTree's, a SummingMergeTree's) answers a query without FINAL
// with as many rows as are not merged yet; without merges both servers hold
// exactly the rows inserted, and costpipe's answers must not depend on
// merges anyway.
func stopMerges(q string) string {
	if m := createTable.FindStringSubmatch(q); m != nil {
		return "SYSTEM STOP MERGES " + m[1]
	}
	return ""
}

// replay returns the statements costpipe sent about src, in the order it
// sent them, rewritten for dst, with Native inserts turned into synthetic
// rows.
func replay(s *server, src, dst string) ([]string, error) {
	if _, err := s.query("SYSTEM FLUSH LOGS"); err != nil {
		return nil, err
	}
	logged, err := s.query("SELECT query FROM system.query_log WHERE type = 1 AND position(query, '" + src + "') > 0 FORMAT JSONEachRow")
	if err != nil {
		return nil, fmt.Errorf("cannot read the query log (costpipe must run with log_queries=1 in its DSN): %w", err)
	}
	cols, err := s.query("SELECT concat(database, '.', table) AS t, name AS n, type AS ty FROM system.columns WHERE database = '" + src + "' FORMAT JSONEachRow")
	if err != nil {
		return nil, err
	}
	types := map[[2]string]string{}
	for _, line := range lines(cols) {
		var c struct{ T, N, Ty string }
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("system.columns: %q: %w", line, err)
		}
		types[[2]string{c.T, c.N}] = c.Ty
	}
	base := time.Now().Unix() / 3600 * 3600
	var out []string
	for _, line := range lines(logged) {
		var r struct{ Query string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("system.query_log: %q: %w", line, err)
		}
		q := strings.TrimSpace(r.Query)
		if strings.Contains(q, "query_log") {
			continue
		}
		if m := nativeInsert.FindStringSubmatch(q); m != nil {
			var names, exprs []string
			for _, c := range strings.Split(m[2], ",") {
				c = strings.TrimSpace(c)
				t, ok := types[[2]string{m[1], c}]
				if !ok { // a table dropped since, such as the migration lock
					t = "String"
					if c == "since" {
						t = "DateTime('UTC')"
					}
				}
				e := synthetic(t, base)
				if c == "application" {
					// Unique per row and insert: no two synthetic rows share
					// a rollup key, so merges (run whenever each server runs
					// them; 26.5 also merges inside an insert) never change
					// how many rows a query reads (the _rows of usage).
					e = fmt.Sprintf("concat('a%d_', toString(number))", len(out))
				}
				names, exprs = append(names, c), append(exprs, e)
			}
			q = "INSERT INTO " + m[1] + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(exprs, ", ") + " FROM numbers(20)"
		}
		out = append(out, strings.ReplaceAll(q, src, dst))
	}
	return out, nil
}

var (
	nativeInsert = regexp.MustCompile(`(?s)^INSERT INTO (\S+)\s*\(([^)]*)\)\s*FORMAT Native$`)
	// Answers that differ by design between releases: the server's
	// version, bytes on disk.
	skipCompare  = regexp.MustCompile(`version\(\)|bytes_on_disk|data_compressed_bytes|data_uncompressed_bytes`)
	decimalZeros = regexp.MustCompile(`\b(\d+)\.(\d*?)0+\b`)
	describe     = regexp.MustCompile(`^(DESCRIBE|DESC)\b`)
	numberType   = regexp.MustCompile(`^U?Int\d+$|^Float\d+$`)
	intArrayType = regexp.MustCompile(`^Array\(U?Int\d+\)$`)
	createTable  = regexp.MustCompile(`^CREATE TABLE (?:IF NOT EXISTS )?([\w.]+)`)
)

// lines returns the non-empty lines of s.
func lines(s string) []string {
	return slices.DeleteFunc(strings.Split(s, "\n"), func(l string) bool { return l == "" })
}

// synthetic is an SQL expression of type t over numbers()' number: values
// that spread over tenants, histogram buckets and, back from base (Unix
// seconds, the hour of the replay), over six days at 7-hour steps, so that
// days and often a month change inside the data (and in a time zone other
// than UTC, local days differ from UTC days).
func synthetic(t string, base int64) string {
	b := strconv.FormatInt(base, 10)
	switch {
	case strings.HasPrefix(t, "Nullable("):
		return "CAST(" + synthetic(t[len("Nullable("):len(t)-1], base) + " AS " + t + ")"
	case strings.HasPrefix(t, "DateTime"):
		return "toDateTime(" + b + " - number * 25200, 'UTC')"
	case t == "Date":
		return "toDate(toDateTime(" + b + " - number * 86400, 'UTC'))"
	case t == "String":
		return "concat('s', toString(number % 3))"
	case strings.HasPrefix(t, "Decimal"):
		return "CAST(concat(toString(number % 5), '.5') AS " + t + ")" // exact, with a fraction
	case numberType.MatchString(t):
		return "CAST(number % 5 AS " + t + ")"
	case t == "Array(Int16)":
		return "CAST([number % 5, 7] AS Array(Int16))"
	case intArrayType.MatchString(t):
		return "CAST([1, 2] AS " + t + ")"
	}
	return "defaultValueOfTypeName('" + strings.ReplaceAll(t, "'", "\\'") + "')" // aggregate states
}

// normalize returns an answer's rows in a comparable form.
func normalize(q, out string) []string {
	var rows []string
	for _, r := range strings.Split(out, "\n") {
		if r == "" {
			continue
		}
		if describe.MatchString(q) {
			r = strings.Join(strings.SplitN(r, "\t", 3)[:2], "\t")
		}
		rows = append(rows, decimalZeros.ReplaceAllStringFunc(r, trimZeros))
	}
	slices.Sort(rows)
	return rows
}

func trimZeros(s string) string {
	m := decimalZeros.FindStringSubmatch(s)
	if m[2] == "" {
		return m[1]
	}
	return m[1] + "." + m[2]
}

// parseRunner splits chdb_runner's framed output into n answers.
func parseRunner(raw []byte, n int) ([]answer, error) {
	out := make([]answer, 0, n)
	for len(raw) > 0 {
		nl := bytes.IndexByte(raw, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("chdb_runner: truncated output after %d answers", len(out))
		}
		f := strings.Fields(string(raw[:nl]))
		if len(f) != 3 || f[0] != "#"+strconv.Itoa(len(out)) {
			return nil, fmt.Errorf("chdb_runner: answer %d: bad header %q", len(out), raw[:nl])
		}
		size, err := strconv.Atoi(f[2])
		if err != nil || nl+1+size+1 > len(raw) {
			return nil, fmt.Errorf("chdb_runner: answer %d: bad length %q", len(out), f[2])
		}
		out = append(out, answer{ok: f[1] == "OK", out: string(raw[nl+1 : nl+1+size])})
		raw = raw[nl+1+size+1:]
	}
	if len(out) != n {
		return nil, fmt.Errorf("chdb_runner: %d answers to %d statements", len(out), n)
	}
	return out, nil
}
