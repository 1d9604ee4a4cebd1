package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printTop is how many keys `dev --print` shows.
const printTop = 20

// row is one key of a topic and its latest value.
type row struct {
	key, value string
	num        float64 // value as a number, when numeric
}

// formatTable writes the latest value of each key as an aligned two-column
// table, at most top rows, then a line with the number of keys and records.
// When every value is a decimal number the rows are sorted by value,
// largest first, then by key, and the values are right-aligned; otherwise
// they are sorted by key. Keys and values that are not printable UTF-8 are
// shown quoted, with escapes.
func formatTable(w io.Writer, latest map[string][]byte, records, top int) error {
	rows := make([]row, 0, len(latest))
	numeric := len(latest) > 0
	for k, v := range latest {
		r := row{key: printable(k), value: printable(string(v))}
		if n, err := strconv.ParseFloat(string(v), 64); err == nil && isDecimal(string(v)) {
			r.num = n
		} else {
			numeric = false
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int {
		if numeric {
			if c := cmp.Compare(b.num, a.num); c != 0 {
				return c
			}
		}
		return strings.Compare(a.key, b.key)
	})
	shown := rows[:min(top, len(rows))]

	kw, vw := len("KEY"), len("VALUE")
	for _, r := range shown {
		kw = max(kw, utf8.RuneCountInString(r.key))
		vw = max(vw, utf8.RuneCountInString(r.value))
	}
	var b strings.Builder
	line := func(k, v string) {
		b.WriteString(k)
		b.WriteString(strings.Repeat(" ", kw-utf8.RuneCountInString(k)+2))
		if numeric {
			b.WriteString(strings.Repeat(" ", vw-utf8.RuneCountInString(v)))
		}
		b.WriteString(v)
		b.WriteByte('\n')
	}
	if len(rows) > 0 {
		line("KEY", "VALUE")
		for _, r := range shown {
			line(r.key, r.value)
		}
		if more := len(rows) - len(shown); more > 0 {
			fmt.Fprintf(&b, "... and %d more\n", more)
		}
	}
	fmt.Fprintf(&b, "%d distinct %s, %d %s\n", len(rows), plural(len(rows), "key"), records, plural(records, "record"))
	_, err := io.WriteString(w, b.String())
	return err
}

// isDecimal reports whether s is an optionally signed decimal number, with
// no exponent, hex, Inf or NaN (which ParseFloat would take).
func isDecimal(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	digits, dot := 0, false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// printable returns s, or s quoted when it is empty or not printable UTF-8.
func printable(s string) string {
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
