package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sharedLiteLLMList is the snapshot of LiteLLM's list the embedded catalog
// is generated from.
func sharedLiteLLMList(t *testing.T) string {
	t.Helper()
	m, err := filepath.Glob("../../pipelines/pricing/source/litellm-model-prices-*.json")
	if err != nil || len(m) != 1 {
		t.Fatalf("want one LiteLLM snapshot in pipelines/pricing/source, found %v (%v)", m, err)
	}
	return m[0]
}

func TestPricesImport(t *testing.T) {
	t.Parallel()
	list := sharedLiteLLMList(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	r := run(t, "", nil, "prices", "import", "--format", "litellm", "-o", a, list)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("import: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`imported (\d+) of the (\d+) entries of .* to ` + regexp.QuoteMeta(a) + `: `).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no summary on stderr:\n%s", r.stderr)
	}
	imported, _ := strconv.Atoi(m[1])
	for _, want := range []string{"skipped ", "  by reason: ", "  by mode: ", "name conflicts", "long-context tiers"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the summary lacks %q:\n%s", want, r.stderr)
		}
	}
	if filepath.Base(list) == "litellm-model-prices-2026-07-24.json" {
		for _, want := range []string{
			"imported 2528 of the 2983 entries",
			"36 name conflicts",
			"8 entries take their cached_input from input_cost_per_token_cache_hit",
			"rounded 31 prices half to even to 12 fraction digits per 1M tokens",
			"  databricks/databricks-claude-3-7-sonnet: input_cost_per_token 2.9999900000000002e-06 -> 2.99999, output_cost_per_token 1.5000020000000002e-05 -> 15.00002\n",
			"  databricks/databricks-meta-llama-3-70b-instruct: output_cost_per_token 2.9999900000000002e-06 -> 2.99999\n",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("the summary lacks %q:\n%s", want, r.stderr)
			}
		}
		if n := strings.Count(r.stderr, "\n  databricks/"); n != 23 {
			t.Errorf("%d entries with rounded prices listed, want 23", n)
		}
	}

	// The catalog is valid, with every imported entry.
	r = run(t, "", nil, "prices", "check", a)
	if r.code != 0 || !strings.Contains(r.stdout, "ok: "+strconv.Itoa(imported)+" models") {
		t.Fatalf("prices check: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}

	// Twice the same bytes: to another file, to stdout, over the first file.
	first, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if r = run(t, "", nil, "prices", "import", "--format", "litellm", "--output", b, list); r.code != 0 {
		t.Fatalf("second import: exit %d, stderr %s", r.code, r.stderr)
	}
	if second, _ := os.ReadFile(b); !bytes.Equal(first, second) {
		t.Error("two imports of the same list differ")
	}
	if r = run(t, "", nil, "prices", "import", list); r.code != 0 || r.stdout != string(first) {
		t.Errorf("import to stdout: exit %d, %d bytes, want the file's %d", r.code, len(r.stdout), len(first))
	}
	os.Chmod(a, 0o600)
	if r = run(t, "", nil, "prices", "import", "-o", a, list); r.code != 0 {
		t.Fatalf("import over the first file: exit %d, stderr %s", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(a); !bytes.Equal(first, again) {
		t.Error("the replaced file differs")
	}
	if st, err := os.Stat(a); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the replaced file's mode: %v %v, want 0600 kept", st.Mode(), err)
	}
	// Flags after the file work too (urfave/cli stops at the first argument).
	if r = run(t, "", nil, "prices", "import", list, "--format", "litellm", "-o", b); r.code != 0 {
		t.Fatalf("flags after the file: exit %d, stderr %s", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(b); !bytes.Equal(first, again) {
		t.Error("flags after the file: the catalog differs")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("files left in the output directory: %v", ents)
	}

	// --from and --source, with the list on stdin.
	data, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	r = run(t, string(data), nil, "prices", "import", "--from", "2026-07-24", "--source", "my snapshot", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "\nsource: \"my snapshot\"\n") || !strings.Contains(r.stdout, `- from: "2026-07-24"`) ||
		strings.Contains(r.stdout, `from: "1970-01-01"`) || !strings.Contains(r.stderr, " entries of stdin to stdout") {
		t.Errorf("--from, --source, stdin: exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestPricesImportErrors(t *testing.T) {
	t.Parallel()
	list := sharedLiteLLMList(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.yaml")
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  []string // in stderr
	}{
		{"bad format", "", []string{"--format", "csv", list}, 2,
			[]string{`invalid --format "csv"`, "the only format is litellm"}},
		{"malformed JSON", `{"gpt-5": {"litellm_provider": "openai", "input_cost_per_token": 1.25e-06,}}`, []string{"-o", out, "-"}, 1,
			[]string{"stdin: cannot decode the LiteLLM price list"}},
		{"not a list", `[1, 2]`, []string{"-"}, 1, []string{"want a JSON object of model entries"}},
		{"negative price", `{"m": {"litellm_provider": "p", "input_cost_per_token": -1e-06}}`, []string{"-o", out, "-"}, 1,
			[]string{`cannot import model "m": field "input_cost_per_token" = -1e-06: negative`}},
		{"strict", "", []string{"--strict", "-o", out, list}, 1,
			[]string{`cannot import model "databricks/databricks-claude-3-7-sonnet": field "input_cost_per_token" = 2.9999900000000002e-06`,
				"problem(s); nothing written", "without --strict"}},
		{"no file", "", nil, 2, []string{"usage: costpipe prices import"}},
		{"two files", "", []string{list, list}, 2, []string{"usage: costpipe prices import"}},
		{"unknown flag after the file", "", []string{list, "--bogus"}, 2, []string{"flag provided but not defined: --bogus", "usage: costpipe prices import"}},
		{"strict after the file", "", []string{list, "--strict", "-o", out}, 1, []string{"problem(s); nothing written"}},
		{"missing file", "", []string{filepath.Join(dir, "missing.json")}, 2, []string{"cannot open the price list"}},
		{"bad from", "", []string{"--from", "yesterday", list}, 2, []string{"--from: "}},
	} {
		r := run(t, tc.stdin, nil, append([]string{"prices", "import"}, tc.args...)...)
		if r.code != tc.code {
			t.Errorf("%s: exit %d, want %d; stderr %s", tc.name, r.code, tc.code, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr does not say %q:\n%s", tc.name, w, r.stderr)
			}
		}
		if r.stdout != "" {
			t.Errorf("%s: output on stdout", tc.name)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s: wrote %s", tc.name, out)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left in the output directory: %v", ents)
	}
}

func TestPricesImportHelp(t *testing.T) {
	t.Parallel()
	r := run(t, "", nil, "prices", "import", "--help")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"docs/contracts.md", "--strict", "--output", "rounded half to even", "gemini", "-> google",
		"input_cost_per_token_cache_hit", "cache_read_input_token_cost                -> cached_input"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "pipelines/pricing") {
		t.Errorf("help points to the source tree:\n%s", r.stdout)
	}
	if r = run(t, "", nil, "prices", "--help"); !strings.Contains(r.stdout, "   import ") {
		t.Errorf("prices --help does not list import:\n%s", r.stdout)
	}
}
