package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// goCase is a host case run by the Go SDK's conformance processor: batches
// of commands (SPEC.md), and the expected results of the last batch (the
// values it emitted to "results", joined by " | "), or its failure.
type goCase struct {
	name    string
	batches [][]string
	want    string
	lim     *Limits
	check   func(outs []Output, inst Instance) error
}

func goCases() []goCase {
	big := func(k string) string { return "putn s1 " + k + " 70000" }
	return []goCase{
		{name: "go: put, get, delete, range", batches: [][]string{
			{"put s1 a 1", "put s1 b 2", "put s2 a other"},
			{"get s1 a", "delete s1 a", "get s1 a", "range s1 ~ ~", "get s2 a"},
		}, want: "found 1 | absent | range b=2 | found other"},
		{name: "go: values and entries past the SDK's buffers", batches: [][]string{
			{"putn s1 a 5000", "putn s1 b 20000", "putn s1 c 60000"},
			{"checkn s1 c", "rangen s1 ~ ~", "rangen s1 b =", "checkn s1 a"},
		}, want: "pattern 60000 | rangen a=5000 b=20000 c=60000 | rangen b=20000 c=60000 | pattern 5000",
			lim: &Limits{MaxValueBytes: 65536}},
		{name: "go: emit with headers, null key and value", batches: [][]string{
			{"emit t1 k v h1 x h2 ~", "emit t2 ~ ~"},
		}, want: "ok", check: func(outs []Output, _ Instance) error {
			want := `t1 key="k" value="v" "h1"="x" "h2"=null
  t2 key=null value=null`
			if got := formatOutputs(outs); got != want {
				return fmt.Errorf("outputs\n  %s\nwant\n  %s", got, want)
			}
			return nil
		}},
		{name: "go: undeclared store and topic are NOT_FOUND", batches: [][]string{
			{"get nostore k", "put nostore k v", "emit notopic k v"},
		}, want: "error NOT_FOUND | error NOT_FOUND | error NOT_FOUND"},
		{name: "go: a returned error fails the batch", batches: [][]string{
			{"put s1 a 1"},
			{"put s1 a 2", "emit t1 k v", "fail boom"},
			{"get s1 a"},
		}, want: "found 1"},
		{name: "go: value over max_value_bytes", batches: [][]string{
			{"put s1 a 1", big("b")},
		}, want: "fails: output_refused", lim: &Limits{MaxValueBytes: 65536}, check: func(_ []Output, inst Instance) error {
			es, err := inst.Entries(context.Background(), "s1")
			if err != nil || len(es) != 0 {
				return fmt.Errorf("s1 holds %s after the refused batch (%v)", entries(es), err)
			}
			return nil
		}},
		{name: "go: state carries across batches", batches: [][]string{
			{"count s1 n"}, {"count s1 n", "count s1 n"}, {"count s1 n", "count s2 n"},
		}, want: "count 4 | count 1"},
	}
}

func (c goCase) toCase(mods *modules) Case {
	return Case{Name: c.name, Want: c.want, run: func(ctx context.Context, h Host) (string, error) {
		wasm, err := mods.get(GoGuestModule)
		if err != nil {
			return "", err
		}
		setup := sdkSetup
		setup.Name = "go-guest"
		if c.lim != nil {
			setup.Limits = *c.lim
		}
		inst, err := h.Load(ctx, wasm, setup)
		if err != nil {
			return "load: " + outcome(err), err
		}
		defer inst.Close(context.WithoutCancel(ctx))
		var offset int64
		var outs []Output
		got := ""
		for k, b := range c.batches {
			var sr []scriptRecord
			for _, cmd := range b {
				sr = append(sr, scriptRecord{key: []byte("k"), command: cmd})
			}
			outs, err = inst.Process(ctx, records(sr, &offset))
			f, isFailure := errors.AsType[*Failure](err)
			switch {
			case isFailure && k == len(c.batches)-1:
				got = "fails: " + string(f.Kind)
			case isFailure && f.Kind == GuestFailed && len(failMessages(sr)) > 0 && strings.Contains(f.Message, failMessages(sr)[0]):
				// The expected failure of a fail command.
			case isFailure:
				return "batch fails: " + string(f.Kind), fmt.Errorf("batch %d: %w", k+1, err)
			case err != nil:
				return "error", err
			}
		}
		var others []Output
		if got == "" {
			var results []string
			for _, o := range outs {
				if o.Topic == "results" {
					results = append(results, string(o.Value))
				} else {
					others = append(others, o)
				}
			}
			got = strings.Join(results, " | ")
			if got == "" {
				got = "ok"
			}
		}
		if c.check != nil && got == c.want {
			return got, c.check(others, inst)
		}
		return got, nil
	}}
}
