package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"strings"
	"unicode/utf8"
)

// cloudEventData returns the bytes of the "data" member of a CloudEvents 1.0
// structured-mode JSON envelope, the costpipe event. It checks what the
// CloudEvents JSON format requires of the envelope: specversion "1.0",
// non-empty string id, source and type, and, when datacontenttype is set, a
// JSON media type. Other attributes (time, subject, extensions) are ignored.
// data_base64 is refused: the event must be a JSON object in data.
func cloudEventData(elem []byte, stack []byte) ([]byte, []byte, error) {
	i := skipSpace(elem, 0)
	if i >= len(elem) || elem[i] != '{' {
		return nil, stack, errors.New("cannot read CloudEvent: expected a JSON object")
	}
	var (
		data                              []byte
		specversion, contentType          []byte
		hasID, hasSource, hasType, hasB64 bool
	)
	i = skipSpace(elem, i+1)
	if i < len(elem) && elem[i] == '}' {
		i++
	} else {
		for {
			if i >= len(elem) || elem[i] != '"' {
				return nil, stack, errors.New("cannot read CloudEvent: expected a member name, found " + found(elem, i))
			}
			kend, err := stringEnd(elem, i)
			if err != nil {
				return nil, stack, errors.New("cannot read CloudEvent: member name does not end")
			}
			name, ok := jsonString(elem[i:kend])
			if !ok {
				return nil, stack, errors.New("cannot read CloudEvent: invalid member name " + string(elem[i:kend]))
			}
			i = skipSpace(elem, kend)
			if i >= len(elem) || elem[i] != ':' {
				return nil, stack, errors.New("cannot read CloudEvent: expected ':' after member name, found " + found(elem, i))
			}
			i = skipSpace(elem, i+1)
			vend, s, err := valueEnd(elem, i, stack)
			stack = s
			if err != nil {
				return nil, stack, errors.New("cannot read CloudEvent: " + err.Error())
			}
			v := elem[i:vend]
			switch name {
			case "specversion":
				specversion = v
			case "id":
				hasID = nonEmptyString(v)
			case "source":
				hasSource = nonEmptyString(v)
			case "type":
				hasType = nonEmptyString(v)
			case "datacontenttype":
				contentType = v
			case "data":
				data = v
			case "data_base64":
				hasB64 = true
			}
			i = skipSpace(elem, vend)
			if i < len(elem) && elem[i] == ',' {
				i = skipSpace(elem, i+1)
				continue
			}
			if i < len(elem) && elem[i] == '}' {
				i++
				break
			}
			return nil, stack, errors.New("cannot read CloudEvent: expected ',' or '}' after member, found " + found(elem, i))
		}
	}
	if i = skipSpace(elem, i); i != len(elem) {
		return nil, stack, errors.New("cannot read CloudEvent: unexpected data after the envelope")
	}
	switch sv, _ := jsonString(specversion); {
	case specversion == nil:
		return nil, stack, errors.New(`cannot read CloudEvent: "specversion" is missing`)
	case sv != "1.0":
		return nil, stack, errors.New(`cannot read CloudEvent: "specversion" is ` + truncate(string(specversion), 32) + `, want "1.0"`)
	case !hasID:
		return nil, stack, errors.New(`cannot read CloudEvent: "id" must be a non-empty string`)
	case !hasSource:
		return nil, stack, errors.New(`cannot read CloudEvent: "source" must be a non-empty string`)
	case !hasType:
		return nil, stack, errors.New(`cannot read CloudEvent: "type" must be a non-empty string`)
	}
	if contentType != nil && !bytes.Equal(contentType, []byte("null")) {
		ct, _ := jsonString(contentType)
		if !isJSONMediaType(ct) {
			return nil, stack, errors.New(`cannot read CloudEvent: "datacontenttype" is ` + truncate(string(contentType), 64) + `, want application/json`)
		}
	}
	if data == nil {
		if hasB64 {
			return nil, stack, errors.New(`cannot read CloudEvent: "data_base64" is not supported, send the event as a JSON object in "data"`)
		}
		return nil, stack, errors.New(`cannot read CloudEvent: "data" is missing`)
	}
	return data, stack, nil
}

// jsonString returns the content of the JSON string literal v (with its
// quotes), and false when v is not a string.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// nonEmptyString reports whether v is a JSON string literal with content.
func nonEmptyString(v []byte) bool {
	s, ok := jsonString(v)
	return ok && s != ""
}

// isJSONMediaType reports application/json, text/json and any "+json" type.
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// truncate cuts s to at most n bytes, at a character boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
