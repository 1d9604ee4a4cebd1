package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Case is one check of a suite: a module, what is done with it, and the
// expected outcome.
type Case struct {
	// Name identifies the case; it starts with its group ("kv_get: ...").
	Name string
	// Want is the expected outcome, in words, for reports.
	Want string
	run  func(ctx context.Context, h Host) (got string, err error)
}

// Result is the outcome of one Case.
type Result struct {
	Name string
	Want string
	// Got is what happened, in the words of Want.
	Got string
	// Err says how the case failed; nil when it passed.
	Err  error
	Took time.Duration
}

// Pass reports whether the case passed.
func (r Result) Pass() bool { return r.Err == nil }

// Run runs the case against h.
func (c Case) Run(ctx context.Context, h Host) Result {
	start := time.Now()
	got, err := c.run(ctx, h)
	if err == nil && got != c.Want {
		err = fmt.Errorf("got %s, want %s", got, c.Want)
	}
	return Result{Name: c.Name, Want: c.Want, Got: got, Err: err, Took: time.Since(start)}
}

// Run runs cases against h in order and returns their results.
func Run(ctx context.Context, h Host, cases []Case) []Result {
	rs := make([]Result, 0, len(cases))
	for _, c := range cases {
		rs = append(rs, c.Run(ctx, h))
	}
	return rs
}

// WriteTable writes results as an aligned table, one case per line, then
// the failures' explanations and a summary line. It returns how many
// failed.
func WriteTable(w io.Writer, rs []Result) (failed int, err error) {
	cut := func(s string, n int) string {
		s = strings.ReplaceAll(s, "\n", " ")
		if utf8.RuneCountInString(s) > n {
			s = string([]rune(s)[:n-1]) + "…"
		}
		return s
	}
	const nameCol, valueCol = 52, 34
	nw, ww, gw := len("CASE"), len("WANT"), len("GOT")
	for _, r := range rs {
		nw = max(nw, utf8.RuneCountInString(cut(r.Name, nameCol)))
		ww = max(ww, utf8.RuneCountInString(cut(r.Want, valueCol)))
		gw = max(gw, utf8.RuneCountInString(cut(r.Got, valueCol)))
	}
	var b strings.Builder
	pad := func(s string, n int) string { return s + strings.Repeat(" ", n-utf8.RuneCountInString(s)+2) }
	b.WriteString(pad("CASE", nw) + pad("WANT", ww) + pad("GOT", gw) + "RESULT\n")
	var failures []Result
	for _, r := range rs {
		verdict := "PASS"
		if !r.Pass() {
			verdict = "FAIL"
			failures = append(failures, r)
		}
		b.WriteString(pad(cut(r.Name, nameCol), nw) + pad(cut(r.Want, valueCol), ww) + pad(cut(r.Got, valueCol), gw) + verdict + "\n")
	}
	for _, r := range failures {
		fmt.Fprintf(&b, "\nFAIL %s:\n  %s\n", r.Name, strings.ReplaceAll(r.Err.Error(), "\n", "\n  "))
	}
	fmt.Fprintf(&b, "\n%d cases: %d passed, %d failed\n", len(rs), len(rs)-len(failures), len(failures))
	_, err = io.WriteString(w, b.String())
	return len(failures), err
}

// outcome describes err for a report: "ok", or the failure's kind.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if f, ok := errors.AsType[*Failure](err); ok {
		return string(f.Kind)
	}
	return "error"
}
