package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/costpipe/costpipe/schemas"
)

// FuzzDecodeRequest feeds arbitrary bodies through the request decoding of
// POST /v1/events: body reading (optionally gzip), framing in each format,
// per-event decoding with the tenant rule. It checks that every element is
// either accepted or rejected, that accepted records are canonical valid
// events under the contract key and the key's tenant, and that the array
// scanner splits every valid JSON array exactly as encoding/json does.
func FuzzDecodeRequest(f *testing.F) {
	ev := event("f-1", "acme")
	for _, seed := range []string{
		ev,
		"[" + ev + "," + event("f-2", "") + "]",
		"[" + ev + `,{"event_id":"x","tenant":"globex"}, 1, "s", [], {}]`,
		ev + "\n\n" + event("f-3", "globex") + "\r\n{",
		`{"specversion":"1.0","id":"1","source":"s","type":"t","data":` + ev + `}`,
		`[{"specversion":"1.0","id":"1","source":"s","type":"t","data":` + ev + `},{"data":1}]`,
		`["a\"]", "\\", {"a":"}"}]`,
		`[[[[{"a":[]}]]]]`,
		`[1,]`, `[`, `]`, `"`, ``, ` `,
	} {
		for mode := range uint8(16) {
			f.Add([]byte(seed), mode)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, mode uint8) {
		fm := format(mode & 3)
		tenant := "acme"
		if mode&4 != 0 {
			tenant = AnyTenant
		}
		gz := mode&8 != 0
		const limit = 1 << 20

		// Body reading round-trips, and releases what it reserved.
		sent := in
		if gz {
			sent = []byte(gzipped(string(in)))
		}
		req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(sent))
		budget := &byteBudget{max: 4 * limit}
		var reserved int64
		var started bool
		body, err := readBody(httptest.NewRecorder(), req, gz, limit, budget, &reserved, &started)
		if reserved <= 0 || budget.used.Load() != reserved {
			t.Fatalf("reserved %d, budget used %d", reserved, budget.used.Load())
		}
		budget.release(reserved)
		switch {
		case len(in) > limit || len(sent) > limit:
			if !errors.Is(err, errTooLarge) {
				t.Fatalf("body of %d bytes (%d sent): err %v, want errTooLarge", len(in), len(sent), err)
			}
			return
		case err != nil:
			t.Fatalf("readBody: %v", err)
		case !bytes.Equal(body, in):
			t.Fatalf("readBody returned %d bytes, sent %d", len(body), len(in))
		}

		b := newBatch()
		b.reset(tenant, timeBounds{})
		derr := b.decode(fm, body)
		isArray := len(bytes.TrimLeft(body, " \t\r\n")) > 0 && bytes.TrimLeft(body, " \t\r\n")[0] == '['
		if (fm == formatJSON && isArray || fm == formatCloudEventBatch) && json.Valid(body) {
			var want []json.RawMessage
			if json.Unmarshal(body, &want) == nil {
				if derr != nil {
					t.Fatalf("valid JSON array refused: %v", derr)
				}
				if n := len(b.spans) + b.nRejected; n != len(want) {
					t.Fatalf("%d elements accepted or rejected, encoding/json finds %d", n, len(want))
				}
				var got [][]byte
				if _, err := splitArray(body, nil, func(_ int, e []byte) { got = append(got, e) }); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("element %d = %q, encoding/json says %q", i, got[i], want[i])
					}
				}
			}
		}
		if derr != nil {
			return
		}
		switch fm {
		case formatNDJSON:
			lines := 0
			splitLines(body, func(int, []byte) { lines++ })
			if n := len(b.spans) + b.nRejected; n != lines {
				t.Fatalf("%d events accepted or rejected, %d non-blank lines", n, lines)
			}
		case formatCloudEvent:
			if n := len(b.spans) + b.nRejected; n != 1 {
				t.Fatalf("%d events from one CloudEvent", n)
			}
		case formatJSON:
			if n := len(b.spans) + b.nRejected; !isArray && n != 1 {
				t.Fatalf("%d events from one object body", n)
			}
		}
		if b.forbidden > b.nRejected || len(b.rejected) != min(b.nRejected, MaxListedRejections) {
			t.Fatalf("forbidden %d, rejected %d, listed %d", b.forbidden, b.nRejected, len(b.rejected))
		}
		for i := 1; i < len(b.rejected); i++ {
			if b.rejected[i].Index <= b.rejected[i-1].Index {
				t.Fatalf("rejections out of order: %+v", b.rejected)
			}
		}
		for _, sp := range b.spans {
			key, value := b.arena[sp.k:sp.v], b.arena[sp.v:sp.end]
			var e schemas.Event
			if err := schemas.DecodeJSON(value, &e); err != nil {
				t.Fatalf("accepted record %q does not decode: %v", value, err)
			}
			if !bytes.Equal(key, e.Key()) {
				t.Fatalf("key %q, want %q", key, e.Key())
			}
			if !bytes.Equal(schemas.AppendJSON(nil, &e), value) {
				t.Fatalf("record %q is not canonical", value)
			}
			if tenant != AnyTenant && e.Tenant != tenant {
				t.Fatalf("accepted an event of tenant %q with a key of %q", e.Tenant, tenant)
			}
		}
	})
}
