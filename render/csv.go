package render

import (
	"encoding/csv"
	"io"
	"math"
	"strconv"
	"time"
)

// WriteCSV writes a header of the column names and one line per row, even
// without rows. Columns shown only in tables and list columns are left
// out; a null is an empty cell. Every cell is defused (Cell), so no value
// is read as a formula.
func WriteCSV(w io.Writer, t *Table) error {
	if err := t.check(); err != nil {
		return err
	}
	var cols []int
	for _, i := range t.visible(false) {
		if !t.Columns[i].Kind.list() {
			cols = append(cols, i)
		}
	}
	cw := &safeCSVWriter{csv.NewWriter(w)}
	rec := make([]string, len(cols))
	for j, i := range cols {
		rec[j] = t.Columns[i].Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, row := range t.Rows {
		for j, i := range cols {
			rec[j] = csvValue(row[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvValue is v as a CSV cell, before defusing.
func csvValue(v Value) string {
	switch v.kind {
	case KindText:
		return v.s
	case KindUint:
		return strconv.FormatUint(v.asUint(), 10)
	case KindInt:
		return strconv.FormatInt(v.asInt(), 10)
	case KindFloat:
		f := v.asFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return ""
		}
		return strconv.FormatFloat(f, 'f', -1, 64)
	case KindMoney:
		return v.asMoney().String()
	case KindTime:
		return v.asTime().Format(time.RFC3339)
	case KindDate:
		return v.asTime().Format(time.DateOnly)
	}
	return ""
}

// safeCSVWriter is a csv.Writer whose Write neutralises formula cells
// (CSVCell).
type safeCSVWriter struct{ *csv.Writer }

func (w *safeCSVWriter) Write(rec []string) error {
	for i, c := range rec {
		rec[i] = CSVCell(c)
	}
	return w.Writer.Write(rec)
}

// CSVCell defuses CSV (formula) injection: a spreadsheet opening the file
// runs a cell that starts with '=', '+', '-' or '@' as a formula, and some
// also after a leading tab or carriage return (OWASP). Such a cell gets a
// leading single quote, which spreadsheets show as text. A cell that is a
// plain decimal number as a whole ("-1.5", "+2", "-3e-7") is left alone:
// a spreadsheet reads it as that number, never as a formula, so negative
// amounts stay numbers. The rule applies to every column, text or not.
func CSVCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		if !isDecimal(s) {
			return "'" + s
		}
	}
	return s
}

// isDecimal reports whether s is [+-]digits[.digits][(e|E)[+-]digits].
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if !digits() {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}
