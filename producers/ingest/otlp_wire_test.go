package ingest

import (
	"bytes"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// wireMessages are error messages with what JSON and protobuf must carry
// intact: quotes, escapes, HTML, non-ASCII, a control character, a length
// past one varint byte, and invalid UTF-8 (sent as U+FFFD).
var wireMessages = []string{"", "x", `quote " backslash \ <tag> & é 日本 ` + "\x00\x1f", strings.Repeat("long ", 60), "bad \xff utf-8"}

// The partial-success answer reads back, with the OTLP package, as what was
// written; in protobuf it is byte for byte the package's own encoding.
func TestPartialSuccessWire(t *testing.T) {
	t.Parallel()
	for _, rejected := range []int64{0, 1, 300, 1 << 40} {
		for _, msg := range wireMessages {
			want := strings.ToValidUTF8(msg, "\uFFFD")
			official := ptraceotlp.NewExportResponse()
			official.PartialSuccess().SetRejectedSpans(rejected)
			official.PartialSuccess().SetErrorMessage(want)
			pb, err := official.MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			if got := partialSuccess(otlpProto, rejected, msg); !bytes.Equal(got, pb) {
				t.Errorf("protobuf of %d %q: %x, want %x", rejected, msg, got, pb)
			}
			for _, enc := range []otlpEncoding{otlpProto, otlpJSON} {
				body := partialSuccess(enc, rejected, msg)
				back := ptraceotlp.NewExportResponse()
				if enc == otlpJSON {
					err = back.UnmarshalJSON(body)
				} else {
					err = back.UnmarshalProto(body)
				}
				if err != nil {
					t.Fatalf("%s answer %q is not an ExportTraceServiceResponse: %v", enc.contentType(), body, err)
				}
				if ps := back.PartialSuccess(); ps.RejectedSpans() != rejected || ps.ErrorMessage() != want {
					t.Errorf("%s answer %q reads %d %q, want %d %q", enc.contentType(), body, ps.RejectedSpans(), ps.ErrorMessage(), rejected, want)
				}
			}
		}
	}
}

// The error answer is a google.rpc.Status to the official decoders; in
// protobuf byte for byte their encoding.
func TestStatusWire(t *testing.T) {
	t.Parallel()
	for _, code := range []int32{3, 7, 8, 12, 13, 14, 16} {
		for _, msg := range wireMessages {
			want := strings.ToValidUTF8(msg, "\uFFFD")
			pb, err := proto.Marshal(&status.Status{Code: code, Message: want})
			if err != nil {
				t.Fatal(err)
			}
			if got := statusBody(otlpProto, code, msg); !bytes.Equal(got, pb) {
				t.Errorf("protobuf of %d %q: %x, want %x", code, msg, got, pb)
			}
			st := &status.Status{}
			if err := protojson.Unmarshal(statusBody(otlpJSON, code, msg), st); err != nil {
				t.Fatalf("JSON of %d %q: %v", code, msg, err)
			}
			if st.Code != code || st.Message != want {
				t.Errorf("JSON of %d %q reads %d %q", code, msg, st.Code, st.Message)
			}
		}
	}
}

// decodeTraces reads an ExportTraceServiceRequest, in both encodings, as
// the OTLP package's request type does.
func TestDecodeTracesAsExportRequest(t *testing.T) {
	t.Parallel()
	for _, td := range append(benchTraces(3), mixedTenants(), ptrace.NewTraces()) {
		req := ptraceotlp.NewExportRequestFromTraces(td)
		want, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range []otlpEncoding{otlpProto, otlpJSON} {
			var body []byte
			if enc == otlpJSON {
				body, err = req.MarshalJSON()
			} else {
				body, err = req.MarshalProto()
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeTraces(enc, body)
			if err != nil {
				t.Fatalf("%s: %v", enc.contentType(), err)
			}
			if b, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(got); !bytes.Equal(b, want) {
				t.Errorf("%s: %d spans decoded differ from the %d sent", enc.contentType(), got.SpanCount(), td.SpanCount())
			}
		}
	}
}

// FuzzOTLPAnswers: any message and count read back through the official
// decoders as written (invalid UTF-8 as U+FFFD).
func FuzzOTLPAnswers(f *testing.F) {
	for _, m := range wireMessages {
		f.Add(m, int64(3))
	}
	f.Fuzz(func(t *testing.T, msg string, rejected int64) {
		want := strings.ToValidUTF8(msg, "\uFFFD")
		for _, enc := range []otlpEncoding{otlpProto, otlpJSON} {
			back := ptraceotlp.NewExportResponse()
			var err error
			if body := partialSuccess(enc, rejected, msg); enc == otlpJSON {
				err = back.UnmarshalJSON(body)
			} else {
				err = back.UnmarshalProto(body)
			}
			if err != nil || back.PartialSuccess().RejectedSpans() != rejected || back.PartialSuccess().ErrorMessage() != want {
				t.Fatalf("%s partial success of %d %q reads %d %q (%v)", enc.contentType(), rejected, msg,
					back.PartialSuccess().RejectedSpans(), back.PartialSuccess().ErrorMessage(), err)
			}
			st := &status.Status{}
			if body := statusBody(enc, 3, msg); enc == otlpJSON {
				err = protojson.Unmarshal(body, st)
			} else {
				err = proto.Unmarshal(body, st)
			}
			if err != nil || st.Code != 3 || st.Message != want {
				t.Fatalf("%s status of %q reads %d %q (%v)", enc.contentType(), msg, st.Code, st.Message, err)
			}
		}
	})
}

// TestPrintable: a parser's message quoting the body has its control
// characters and invalid UTF-8 escaped, and the rest kept.
func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain ü 租户":             "plain ü 租户",
		"a\x00b\x1bc\x7f":        `a\x00b\x1bc\x7f`,
		"d\u0085e\xffg\xc3":      `d\u0085e\xffg\xc3`,
		"found \x00, error ...|": `found \x00, error ...|`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
