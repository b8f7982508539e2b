package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// grafanaDashboard is the part of a Grafana dashboard the test reads.
type grafanaDashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			RawSQL string `json:"rawSql"`
			Format int    `json:"format"`
		} `json:"targets"`
	} `json:"panels"`
}

// expandGrafana replaces the variables and macros of the ClickHouse data
// source the way it expands them: $__timeFilter(ts) becomes a ts range of
// toDateTime(seconds), ${v:singlequote} a quoted list.
func expandGrafana(sql, db string, from, to time.Time, vars map[string]string) string {
	sql = strings.ReplaceAll(sql, "$__timeFilter(ts)", fmt.Sprintf("ts >= toDateTime(%d) AND ts <= toDateTime(%d)", from.Unix(), to.Unix()))
	sql = strings.ReplaceAll(sql, "${database}", db)
	for k, v := range vars {
		sql = strings.ReplaceAll(sql, "${"+k+":singlequote}", "'"+strings.ReplaceAll(v, "'", "\\'")+"'")
		sql = strings.ReplaceAll(sql, "${"+k+"}", v)
	}
	return sql
}

// TestGrafanaDashboard: deploy/grafana's dashboard is valid JSON, and every
// query in it (panels and variables) runs on the views of a migrated
// database with data, for All and for one tenant and model; the panels
// over the usage views return rows, and the top tenants' cost equals the
// API's. The provisioning YAML parses.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../deploy/grafana/dashboards/costpipe.json")
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("costpipe.json is not valid JSON: %v", err)
	}
	if d.UID == "" || len(d.Panels) < 10 {
		t.Fatalf("uid %q, %d panels", d.UID, len(d.Panels))
	}
	for _, f := range []string{"../deploy/grafana/provisioning/datasources/costpipe-clickhouse.yaml", "../deploy/grafana/provisioning/dashboards/costpipe.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(b, &v); err != nil || v["apiVersion"] != 1 {
			t.Errorf("%s: %v %v", f, err, v)
		}
	}
	w := fixture(t)
	ctx := context.Background()
	from, to := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 21, 0, 0, 0, 0, time.UTC)
	run := func(what, sql string) int {
		t.Helper()
		if strings.Contains(sql, "$") {
			t.Errorf("%s: unexpanded variable or macro:\n%s", what, sql)
			return 0
		}
		rows, err := w.Conn().Query(ctx, sql)
		if err != nil {
			t.Errorf("%s: %v\n%s", what, err, sql)
			return 0
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return n
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			q, _ := v.Query.(string)
			// The variable queries look back from now(); the fixture is in March 2026.
			q = strings.ReplaceAll(q, "now() - INTERVAL 90 DAY", "toDateTime('2026-03-01 00:00:00')")
			if n := run("variable "+v.Name, expandGrafana(q, w.Database(), from, to, nil)); n == 0 {
				t.Errorf("variable %s lists nothing", v.Name)
			}
		}
	}
	for _, vars := range []map[string]string{
		{"tenant": "__all", "model": "__all", "budget": "5000"},
		{"tenant": hostile, "model": tenantFixture[hostile].model, "budget": "250.5"},
	} {
		for _, p := range d.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				n := run(fmt.Sprintf("panel %q (%v)", p.Title, vars), expandGrafana(tg.RawSQL, w.Database(), from, to, vars))
				usage := strings.Contains(tg.RawSQL, "usage_hourly") && !strings.Contains(p.Title, "Unpriced") && !strings.Contains(p.Title, "first token") // the fixture has no TTFT
				if usage && n == 0 {
					t.Errorf("panel %q (%v) returned no rows over the fixture", p.Title, vars)
				}
			}
		}
	}
	// The top tenants panel agrees with the API's top list.
	for _, p := range d.Panels {
		if p.Title != "Top tenants by cost, with their share" {
			continue
		}
		sql := expandGrafana(p.Targets[0].RawSQL, w.Database(), from, to, map[string]string{"tenant": "__all", "model": "__all"})
		var tenant string
		var cost, share float64
		var calls uint64
		if err := w.Conn().QueryRow(ctx, sql).Scan(&tenant, &cost, &calls, &share); err != nil {
			t.Fatal(err)
		}
		hs := newTestServer(t, w, nil)
		top := rows(t, get(t, hs, "root", "/api/v1/top?from=2026-03-01&to=2026-03-21&by=tenant&limit=1", ""))
		if len(top) != 1 || top[0]["tenant"] != tenant || fmt.Sprintf("%.6f", top[0]["share"]) != fmt.Sprintf("%.6f", share) {
			t.Errorf("grafana top tenant %q share %v; API %v", tenant, share, top)
		}
	}
}
