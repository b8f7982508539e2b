package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/costpipe/costpipe/schemas"
)

// This file is the OTLP/HTTP messages /v1/traces reads and writes, without
// the OTLP gRPC service package (ptraceotlp) and google.golang.org/protobuf:
// linking them put gRPC and its package inits in every costpipe process,
// about 6 ms of each command's start (docs/design.md, "OTLP in").
// The request decodes as TracesData and the two answers are small enough
// to write by hand; the tests read them back with the official packages.

// decodeTraces decodes an ExportTraceServiceRequest body in enc. The
// request's one field, repeated ResourceSpans resource_spans = 1, is
// TracesData's: the same bytes in protobuf, the same object in JSON.
func decodeTraces(enc otlpEncoding, body []byte) (td ptrace.Traces, err error) {
	// The decoders return errors for malformed input; a panic on input
	// they did not foresee must still be a 400, never a dead connection.
	defer func() {
		if p := recover(); p != nil {
			td, err = ptrace.Traces{}, fmt.Errorf("cannot decode the OTLP body: %v", p)
		}
	}()
	if enc == otlpJSON {
		if err := jsonDepthWithin(body, maxJSONDepth); err != nil {
			return ptrace.Traces{}, fmt.Errorf("cannot decode the OTLP JSON body: %w", err)
		}
		if td, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body); err != nil {
			return ptrace.Traces{}, otlpJSONError(body, err)
		}
		return td, nil
	}
	if td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body); err != nil {
		return ptrace.Traces{}, fmt.Errorf("cannot decode the OTLP protobuf body (ExportTraceServiceRequest): %w", err)
	}
	return td, nil
}

// maxJSONDepth bounds the nesting of an OTLP JSON body. A real export
// nests about ten levels (resource spans, scope spans, span, attribute,
// value) plus its array and map values; pdata's JSON parser recurses once
// per level, so 150,000 levels in a 4 MB body took that much stack per
// request. Protobuf bodies are bounded by their decoder's recursion limit.
const maxJSONDepth = 1000

// jsonDepthWithin fails when body nests objects and arrays deeper than max
// (strings skipped, escapes included); it does not check the syntax.
func jsonDepthWithin(body []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for i, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > max {
				return fmt.Errorf("nested deeper than %d levels at byte %d", max, i)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// otlpJSONError is the error of an OTLP JSON body that pdata refused with
// err. pdata's messages are its JSON parser's ("ReadObject: expect { or ,
// or } or n, but found \x00, error found in #0 byte of ...", the count
// relative to a window of the body): the answer says first that the body
// is not valid OTLP JSON and, when it is not JSON at all, at which byte
// (encoding/json's syntax check, run only on this error path), then
// pdata's detail, made printable.
func otlpJSONError(body []byte, err error) error {
	const what = "cannot decode the OTLP JSON body: not valid OTLP JSON (ExportTraceServiceRequest)"
	detail := printable(err.Error())
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%s: the body is empty; an export without spans is {} (%s)", what, detail)
	}
	var v struct{}
	var se *json.SyntaxError
	if !errors.As(json.Unmarshal(body, &v), &se) {
		return fmt.Errorf("%s: %s", what, detail) // JSON, but not of the request's shape
	}
	// Offset counts the bytes read: the one at fault is the last of them,
	// unless the body ended first.
	if strings.HasPrefix(se.Error(), "unexpected end") {
		return fmt.Errorf("%s: the body ends at byte %d inside a JSON value (%s)", what, len(body), detail)
	}
	return fmt.Errorf("%s at byte %d: %s (%s)", what, se.Offset-1, se.Error(), detail)
}

// printable is s with control characters and invalid UTF-8 escaped (\x00,
// \u0085, \xff), so that a parser's message quoting the body reads in a
// log or a terminal.
func printable(s string) string {
	if schemas.ValidText(s) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&sb, `\x%02x`, s[i])
		case unicode.IsControl(r) && r < utf8.RuneSelf:
			fmt.Fprintf(&sb, `\x%02x`, r)
		case unicode.IsControl(r):
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			sb.WriteString(s[i : i+n])
		}
		i += n
	}
	return sb.String()
}

// partialSuccess is an ExportTraceServiceResponse whose partial_success
// (field 1) holds rejected_spans (1, int64) and error_message (2, string),
// in enc. In JSON the int64 is a decimal string, as ProtoJSON writes it.
func partialSuccess(enc otlpEncoding, rejected int64, msg string) []byte {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if enc == otlpJSON {
		type ps struct {
			RejectedSpans string `json:"rejectedSpans,omitempty"`
			ErrorMessage  string `json:"errorMessage,omitempty"`
		}
		out, _ := json.Marshal(struct {
			PartialSuccess ps `json:"partialSuccess"`
		}{ps{RejectedSpans: strconv.FormatInt(rejected, 10), ErrorMessage: msg}}) // cannot fail: two strings
		return out
	}
	// error_message first, as pdata writes it: any order decodes the same,
	// and the tests compare bytes.
	inner := appendStringField(nil, 2, msg)
	inner = appendVarintField(inner, 1, uint64(rejected))
	return appendBytesField(nil, 1, inner)
}

// statusBody is a google.rpc.Status of code (field 1, int32) and msg
// (field 2, string) in enc, the body OTLP/HTTP answers errors with.
func statusBody(enc otlpEncoding, code int32, msg string) []byte {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if enc == otlpJSON {
		out, _ := json.Marshal(struct {
			Code    int32  `json:"code,omitempty"`
			Message string `json:"message,omitempty"`
		}{code, msg}) // cannot fail: an int and a string
		return out
	}
	return appendStringField(appendVarintField(nil, 1, uint64(code)), 2, msg)
}

// appendVarintField appends protobuf field n of varint v (nothing for 0, a
// default value).
func appendVarintField(b []byte, n int, v uint64) []byte {
	if v == 0 {
		return b
	}
	return binary.AppendUvarint(binary.AppendUvarint(b, uint64(n)<<3), v)
}

// appendStringField appends protobuf field n holding s (nothing for "").
func appendStringField(b []byte, n int, s string) []byte {
	if s == "" {
		return b
	}
	return append(binary.AppendUvarint(binary.AppendUvarint(b, uint64(n)<<3|2), uint64(len(s))), s...)
}

// appendBytesField appends protobuf field n holding the message m (always:
// a present, empty message differs from an absent one).
func appendBytesField(b []byte, n int, m []byte) []byte {
	return append(binary.AppendUvarint(binary.AppendUvarint(b, uint64(n)<<3|2), uint64(len(m))), m...)
}
