package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// splitArrayCases are JSON arrays the scanner must split as encoding/json
// does, tricky strings and nesting included.
var splitArrayCases = []string{
	`[]`,
	` [ ] `,
	`[1]`,
	`[1,2 , 3]`,
	`["a","b\"c","d\\","e\\\"f", "\\\\"]`,
	`[{"a":"]"},{"b":"}"},{"c":"[{"}]`,
	`[{"a":[1,{"b":[]}]} , [[],[[]]] , "x" , null , true , -1.5e3 ]`,
	"[\n\t{\"event_id\":\"e\\u0022\"}\r\n]",
	`[{"k":"\u005c"}, {"k":"\\"}]`,
	`["日本語", {"é":"ü"}]`,
}

func TestSplitArrayMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range splitArrayCases {
		checkSplitArray(t, []byte(in))
	}
}

func checkSplitArray(t *testing.T, in []byte) {
	t.Helper()
	var want []json.RawMessage
	if err := json.Unmarshal(in, &want); err != nil {
		t.Fatalf("test input %q is not a JSON array: %v", in, err)
	}
	var got [][]byte
	_, err := splitArray(in, nil, func(i int, elem []byte) {
		if i != len(got) {
			t.Errorf("%q: element index %d, want %d", in, i, len(got))
		}
		got = append(got, elem)
	})
	if err != nil {
		t.Fatalf("%q: splitArray: %v", in, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d elements, encoding/json finds %d", in, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%q: element %d = %q, encoding/json says %q", in, i, got[i], want[i])
		}
	}
}

func TestSplitArrayFramingErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{``, "expected '[' to start an array, found end of body"},
		{`{"a":1}`, "expected '[' to start an array, found '{'"},
		{`[`, "expected a value, found end of body"},
		{`[1,]`, "expected a value, found ']'"},
		{`[,1]`, "expected a value, found ','"},
		{`[1 2]`, "expected ',' or ']' after array element 0, found '2'"},
		{`[{"a":1]`, `offset 7: expected '}', found ']'`},
		{`[{"a":"1}]`, "offset 6: string does not end"},
		{`[{"a":1`, "value starting here does not end"},
		{`[{"a":1}`, "expected ',' or ']' after array element 0, found end of body"},
		{`[1] [2]`, "expected end of body after the array, found '['"},
		{"[1]\x00", "found byte 0x00"},
		{"[" + strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1) + "]", "nested deeper than 10000 levels"},
	} {
		_, err := splitArray([]byte(tc.in), nil, func(int, []byte) {})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("splitArray(%.40q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
	// Exactly maxNesting levels inside an element are fine.
	deep := "[" + strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + "]"
	if _, err := splitArray([]byte(deep), nil, func(int, []byte) {}); err != nil {
		t.Errorf("nesting of %d levels: %v", maxNesting, err)
	}
}

func TestSplitLines(t *testing.T) {
	t.Parallel()
	var got []string
	var idx []int
	splitLines([]byte("a\r\n\n  \nb\n\r\nc"), func(i int, l []byte) {
		idx = append(idx, i)
		got = append(got, string(l))
	})
	if strings.Join(got, "|") != "a|b|c" || len(idx) != 3 || idx[0] != 0 || idx[1] != 3 || idx[2] != 5 {
		t.Errorf("lines %q at %v; want a, b, c at 0, 3, 5", got, idx)
	}
}

func TestCloudEventData(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, data, err string }{
		{`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"x":1}}`, `{"x":1}`, ""},
		{` { "data" : [1] , "type":"t","source":"s","id":"1","specversion":"1.0","datacontenttype":"application/json; charset=utf-8","ext":{"a":"}"} } `, `[1]`, ""},
		{`{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/vnd.x+json","data":{}}`, `{}`, ""},
		{`{"spec\u0076ersion":"1\u002e0","id":"1","source":"s","type":"t","data":{}}`, `{}`, ""},
		{`{"specversion":"1.0","id":"1","source":"s","type":"t"}`, "", `"data" is missing`},
		{`{"id":"1","source":"s","type":"t","data":{}}`, "", `"specversion" is missing`},
		{`{"specversion":1.0,"id":"1","source":"s","type":"t","data":{}}`, "", `"specversion" is 1.0, want "1.0"`},
		{`{"specversion":"1.0","id":1,"source":"s","type":"t","data":{}}`, "", `"id" must be a non-empty string`},
		{`{"specversion":"1.0","id":"1","type":"t","data":{}}`, "", `"source" must be`},
		{`{"specversion":"1.0","id":"1","source":"s","data":{}}`, "", `"type" must be`},
		{`{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain","data":{}}`, "", `"datacontenttype" is "text/plain"`},
		{`{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"e30="}`, "", "data_base64"},
		{`[1]`, "", "expected a JSON object"},
		{`{"data":{}} x`, "", "unexpected data after the envelope"},
		{`{"data" {}}`, "", "expected ':'"},
		{`{data:{}}`, "", "expected a member name"},
	} {
		data, _, err := cloudEventData([]byte(tc.in), nil)
		if tc.err == "" {
			if err != nil || string(data) != tc.data {
				t.Errorf("%s: data %q, err %v; want %q", tc.in, data, err, tc.data)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err %v, want one containing %q", tc.in, err, tc.err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]format{
		"":                                    formatJSON,
		"application/json":                    formatJSON,
		"Application/JSON; charset=UTF-8":     formatJSON,
		"application/x-ndjson":                formatNDJSON,
		"application/jsonl":                   formatNDJSON,
		"application/cloudevents+json":        formatCloudEvent,
		"application/cloudevents-batch+json":  formatCloudEventBatch,
		"application/cloudevents+json; a=b  ": formatCloudEvent,
	} {
		if got, err := parseFormat(ct); err != nil || got != want {
			t.Errorf("parseFormat(%q) = %v, %v; want %v", ct, got, err, want)
		}
	}
	for _, ct := range []string{"text/plain", "application/xml", "application/json; charset=utf-16", ";;"} {
		if _, err := parseFormat(ct); err == nil {
			t.Errorf("parseFormat(%q) accepted", ct)
		}
	}
}
