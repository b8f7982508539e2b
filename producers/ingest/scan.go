package ingest

import (
	"bytes"
	"fmt"
	"strconv"
)

// maxNesting bounds the nesting of arrays and objects the scanner follows,
// as the event decoder and encoding/json do.
const maxNesting = 10000

// framingError is a request body whose overall shape is broken (an array
// that does not close, junk after it), as opposed to one bad event. The
// whole request is rejected.
type framingError struct {
	offset int
	msg    string
}

func (e *framingError) Error() string {
	return "cannot split the request body at offset " + strconv.Itoa(e.offset) + ": " + e.msg
}

// found describes the byte at data[i] for an error message.
func found(data []byte, i int) string {
	if i >= len(data) {
		return "end of body"
	}
	c := data[i]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// isSpace reports JSON whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// special marks the bytes valueEnd stops at outside strings.
var special = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// strEnd marks the bytes that end a run of plain string content.
var strEnd = [256]bool{'"': true, '\\': true}

// scalarEnd marks the bytes that end a number or literal.
var scalarEnd = [256]bool{',': true, ']': true, '}': true, ' ': true, '\t': true, '\n': true, '\r': true,
	'{': true, '[': true, '"': true, ':': true}

// stringEnd returns the index after the string whose opening quote is at
// data[i]. Only quotes and backslashes matter: an unescaped quote ends the
// string. Content is not checked (the event decoder does).
func stringEnd(data []byte, i int) (int, error) {
	j := i + 1
	for {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			return 0, &framingError{offset: i, msg: "string does not end"}
		}
		q := j + k
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for p := q - 1; p > i && data[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

// valueEnd returns the index after the JSON value starting at data[i], which
// is not whitespace. It follows what decides where a value ends: strings and
// their escapes, and the nesting and matching of brackets, up to maxNesting
// levels. It does not check literals, numbers, or the commas and colons
// inside containers: the event decoder checks every element it is given.
// stack is scratch space for the open brackets and is returned for reuse.
func valueEnd(data []byte, i int, stack []byte) (int, []byte, error) {
	if i >= len(data) {
		return 0, stack, &framingError{offset: i, msg: "expected a value, found end of body"}
	}
	switch data[i] {
	case '"':
		end, err := stringEnd(data, i)
		return end, stack, err
	case '{', '[':
	case '}', ']', ',', ':':
		return 0, stack, &framingError{offset: i, msg: "expected a value, found " + found(data, i)}
	default:
		j := i + 1
		for j < len(data) && !scalarEnd[data[j]] {
			j++
		}
		return j, stack, nil
	}
	stack = stack[:0]
	for j := i; j < len(data); {
		c := data[j]
		if !special[c] {
			j++
			continue
		}
		switch c {
		case '"':
			// Inline for the many short strings of an event: skip to the
			// closing quote, jumping over the byte after each backslash.
			k := j + 1
			for k < len(data) {
				if d := data[k]; !strEnd[d] {
					k++
				} else if d == '"' {
					break
				} else {
					k += 2
				}
			}
			if k >= len(data) {
				return 0, stack, &framingError{offset: j, msg: "string does not end"}
			}
			j = k + 1
			continue
		case '{':
			stack = append(stack, '}')
		case '[':
			stack = append(stack, ']')
		default: // '}' or ']'
			if stack[len(stack)-1] != c {
				return 0, stack, &framingError{offset: j, msg: "expected " + strconv.QuoteRune(rune(stack[len(stack)-1])) + ", found " + found(data, j)}
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return j + 1, stack, nil
			}
		}
		if len(stack) > maxNesting {
			return 0, stack, &framingError{offset: j, msg: "nested deeper than " + strconv.Itoa(maxNesting) + " levels"}
		}
		j++
	}
	return 0, stack, &framingError{offset: i, msg: "value starting here does not end"}
}

// splitArray calls fn with the index and bytes of each element of the JSON
// array that is data (whitespace around it allowed), without checking the
// elements themselves. It stops at the first framing error, which may come
// after fn was called for earlier elements.
func splitArray(data []byte, stack []byte, fn func(index int, elem []byte)) ([]byte, error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return stack, &framingError{offset: i, msg: "expected '[' to start an array, found " + found(data, i)}
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		i++
	} else {
		for n := 0; ; n++ {
			end, s, err := valueEnd(data, i, stack)
			stack = s
			if err != nil {
				return stack, err
			}
			fn(n, data[i:end])
			i = skipSpace(data, end)
			if i < len(data) && data[i] == ',' {
				i = skipSpace(data, i+1)
				continue
			}
			if i < len(data) && data[i] == ']' {
				i++
				break
			}
			return stack, &framingError{offset: i, msg: "expected ',' or ']' after array element " + strconv.Itoa(n) + ", found " + found(data, i)}
		}
	}
	if i = skipSpace(data, i); i != len(data) {
		return stack, &framingError{offset: i, msg: "expected end of body after the array, found " + found(data, i)}
	}
	return stack, nil
}

// splitLines calls fn with the 0-based line number and content of every
// line of data that is not blank, without its line ending ("\n" or "\r\n").
func splitLines(data []byte, fn func(line int, elem []byte)) {
	for n := 0; len(data) > 0; n++ {
		var line []byte
		if k := bytes.IndexByte(data, '\n'); k >= 0 {
			line, data = data[:k], data[k+1:]
		} else {
			line, data = data, nil
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if skipSpace(line, 0) < len(line) {
			fn(n, line)
		}
	}
}
