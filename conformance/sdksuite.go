package conformance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/flowstate/flowstate/abi"
)

// sdkSetup is what the conformance processor is loaded with (SPEC.md).
var sdkSetup = Setup{
	Name:   "guest",
	Stores: []string{"s1", "s2"},
	Topics: []string{"results", "t1", "t2"},
	Limits: Limits{MaxValueBytes: 65536, MaxOutputRecords: 100},
}

// scenario is one scenario of the SDK script.
type scenario struct {
	name    string
	batches [][]scriptRecord
}

// scriptRecord is one input record of the script.
type scriptRecord struct {
	key     []byte
	headers []abi.Header
	ts      int64
	hasTS   bool
	command string
}

// parseScript parses the SDK script (SPEC.md, Scripts).
func parseScript(text string) ([]scenario, error) {
	var scs []scenario
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		bad := func(format string, args ...any) error {
			return fmt.Errorf("script line %d: %s", line, fmt.Sprintf(format, args...))
		}
		switch {
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#"):
			continue
		case strings.HasPrefix(l, "scenario "):
			scs = append(scs, scenario{name: strings.TrimPrefix(l, "scenario ")})
			continue
		case len(scs) == 0:
			return nil, bad("%q before the first scenario", l)
		case l == "batch":
			s := &scs[len(scs)-1]
			s.batches = append(s.batches, nil)
			continue
		}
		s := &scs[len(scs)-1]
		if len(s.batches) == 0 {
			return nil, bad("record before the first batch")
		}
		var r scriptRecord
		for strings.HasPrefix(l, "@") {
			attr, rest, _ := strings.Cut(l, " ")
			l = rest
			name, val, _ := strings.Cut(attr[1:], "=")
			switch name {
			case "key":
				w, err := decodeWord(val)
				if err != nil {
					return nil, bad("%v", err)
				}
				r.key = w
			case "header":
				hk, hv, ok := strings.Cut(val, ",")
				k, err1 := decodeWord(hk)
				v, err2 := decodeWord(hv)
				if !ok || k == nil || errors.Join(err1, err2) != nil {
					return nil, bad("bad header %q", val)
				}
				r.headers = append(r.headers, abi.Header{Key: string(k), Value: v})
			case "ts":
				ts, err := strconv.ParseInt(val, 10, 64)
				if err != nil {
					return nil, bad("bad timestamp %q", val)
				}
				r.ts, r.hasTS = ts, true
			default:
				return nil, bad("unknown attribute %q", attr)
			}
		}
		if l == "" {
			return nil, bad("no command")
		}
		r.command = l
		s.batches[len(s.batches)-1] = append(s.batches[len(s.batches)-1], r)
	}
	return scs, sc.Err()
}

// decodeWord decodes a script word: "~" is nil, "=" is empty, %XX a byte.
func decodeWord(w string) ([]byte, error) {
	switch w {
	case "~":
		return nil, nil
	case "=":
		return []byte{}, nil
	}
	b := make([]byte, 0, len(w))
	for i := 0; i < len(w); i++ {
		if w[i] != '%' {
			b = append(b, w[i])
			continue
		}
		if i+2 >= len(w) {
			return nil, fmt.Errorf("bad escape in %q", w)
		}
		v, err := strconv.ParseUint(w[i+1:i+3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("bad escape in %q", w)
		}
		b = append(b, byte(v))
		i += 2
	}
	return b, nil
}

// records returns the abi records of a batch; offset is the scenario's next
// offset.
func records(batch []scriptRecord, offset *int64) []abi.Record {
	recs := make([]abi.Record, len(batch))
	for k, r := range batch {
		ts := 1700000000000 + *offset
		if r.hasTS {
			ts = r.ts
		}
		recs[k] = abi.Record{Topic: "in", Partition: 3, Offset: *offset, Timestamp: ts, Key: r.key, Value: []byte(r.command), Headers: r.headers}
		*offset++
	}
	return recs
}

// failMessages returns the texts of a batch's fail commands.
func failMessages(batch []scriptRecord) []string {
	var msgs []string
	for _, r := range batch {
		if rest, ok := strings.CutPrefix(r.command, "fail "); ok {
			if w, err := decodeWord(rest); err == nil {
				msgs = append(msgs, string(w))
			}
		}
	}
	return msgs
}

// levelNames names the log levels of the ABI.
var levelNames = map[int32]string{abi.LevelDebug: "debug", abi.LevelInfo: "info", abi.LevelWarn: "warn", abi.LevelError: "error"}

// runScenario runs one scenario on a fresh instance of guest and renders
// it in the golden file's format.
//
// logged reports whether the host showed the guest's logs (LogReader).
func runScenario(ctx context.Context, h Host, guest []byte, s scenario) (text string, logged bool, err error) {
	inst, err := h.Load(ctx, guest, sdkSetup)
	if err != nil {
		return "", false, fmt.Errorf("load: %w", err)
	}
	defer inst.Close(context.WithoutCancel(ctx))
	lr, _ := inst.(LogReader)
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s\n", s.name)
	var offset int64
	logs := 0
	for k, batch := range s.batches {
		outs, err := inst.Process(ctx, records(batch, &offset))
		fmt.Fprintf(&b, "  batch %d: ", k+1)
		if f, ok := errors.AsType[*Failure](err); ok {
			b.WriteString(string(f.Kind))
			if msgs := failMessages(batch); f.Kind == GuestFailed && len(msgs) > 0 {
				seen := false
				for _, m := range msgs {
					seen = seen || strings.Contains(f.Message, m) || strings.Contains(f.Detail, m)
				}
				if seen {
					b.WriteString(" (fail message seen)")
				} else {
					fmt.Fprintf(&b, " (message %q)", f.Message)
				}
			}
		} else if err != nil {
			return "", false, fmt.Errorf("batch %d: %w", k+1, err)
		} else {
			b.WriteString("ok")
		}
		b.WriteString("\n")
		for _, o := range outs {
			fmt.Fprintf(&b, "    %s\n", formatOutputs([]Output{o}))
		}
		if lr != nil {
			all := lr.Logs()
			for _, l := range all[logs:] {
				fmt.Fprintf(&b, "    log %s %q\n", levelNames[l.Level], l.Message)
			}
			logs = len(all)
		}
	}
	for _, store := range sdkSetup.Stores {
		es, err := inst.Entries(ctx, store)
		if err != nil {
			return "", false, err
		}
		b.WriteString("  store " + store + ":")
		for _, e := range es {
			b.WriteString("\n    " + quote(e.Key) + " = " + quote(e.Value))
		}
		if len(es) == 0 {
			b.WriteString(" (empty)")
		}
		b.WriteString("\n")
	}
	return b.String(), lr != nil, nil
}

// script returns the embedded SDK script and its golden results.
func script() ([]scenario, map[string]string, error) {
	text, err := embedded.ReadFile("testdata/sdk/script.txt")
	if err != nil {
		return nil, nil, err
	}
	scs, err := parseScript(string(text))
	if err != nil {
		return nil, nil, err
	}
	golden, err := embedded.ReadFile("testdata/sdk/script.golden")
	if err != nil {
		return nil, nil, err
	}
	want := map[string]string{}
	for part := range strings.SplitSeq(string(golden), "\nscenario ") {
		part = strings.TrimPrefix(part, "scenario ")
		name, _, _ := strings.Cut(part, "\n")
		want[name] = "scenario " + strings.TrimRight(part, "\n") + "\n"
	}
	return scs, want, nil
}

// SDKSuite returns the SDK cases for guest, an SDK's implementation of the
// conformance processor (SPEC.md): one case per scenario of the embedded
// script, passing when the guest's outputs, failures and stores match the
// golden results exactly.
func SDKSuite(guest []byte) ([]Case, error) {
	scs, golden, err := script()
	if err != nil {
		return nil, err
	}
	var cases []Case
	for _, s := range scs {
		want, ok := golden[s.name]
		if !ok {
			return nil, fmt.Errorf("conformance: scenario %q has no golden result", s.name)
		}
		cases = append(cases, Case{Name: "sdk: " + s.name, Want: "as golden", run: func(ctx context.Context, h Host) (string, error) {
			got, logged, err := runScenario(ctx, h, guest, s)
			if err != nil {
				return "error", err
			}
			want := want
			if !logged {
				want = withoutLogs(want)
			}
			if got != want {
				return "differs", fmt.Errorf("%s", diff(want, got))
			}
			return "as golden", nil
		}})
	}
	return cases, nil
}

// SDKTranscript runs every scenario of the SDK script with guest and
// returns the results in the golden file's format; the reference guest's
// transcript is testdata/sdk/script.golden.
func SDKTranscript(ctx context.Context, h Host, guest []byte) (string, error) {
	scs, _, err := script()
	if err != nil {
		return "", err
	}
	var parts []string
	for _, s := range scs {
		got, _, err := runScenario(ctx, h, guest, s)
		if err != nil {
			return "", fmt.Errorf("scenario %s: %w", s.name, err)
		}
		parts = append(parts, got)
	}
	return strings.Join(parts, "\n"), nil
}

func withoutLogs(s string) string {
	var keep []string
	for l := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(l, "    log ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// diff shows the first lines where got and want differ.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for k := range max(len(w), len(g)) {
		var wl, gl string
		if k < len(w) {
			wl = w[k]
		}
		if k < len(g) {
			gl = g[k]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want %s\n   got %s\nwhole output:\n%s", k+1, wl, gl, got)
		}
	}
	return "equal"
}
