// Package wordcountas holds the tests of the AssemblyScript wordcount
// (assembly/): its module must behave exactly as plugins/wordcount's.
package wordcountas

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/state"
)

// asModule reads a module built from the AssemblyScript sources.
func asModule(t *testing.T, file string) []byte {
	t.Helper()
	wasm, err := os.ReadFile(plugintest.BuildAS(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// task is one wordcount module instantiated on its own store, with the
// declarations of examples/wordcount.yaml.
type task struct {
	db   *state.DB
	inst *host.Instance
}

func compile(t *testing.T, rt *host.Runtime, name string, wasm []byte) *host.Module {
	t.Helper()
	m, err := rt.Compile(t.Context(), name, wasm, host.Limits{})
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return m
}

func newTask(t *testing.T, m *host.Module, db *state.DB) *task {
	t.Helper()
	if db == nil {
		var err error
		if db, err = state.Open(state.Config{Dir: t.TempDir(), Stores: []string{"counts"}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
	}
	i, err := m.Instantiate(t.Context(), host.InstanceConfig{DB: db, Stores: []string{"counts"}, Topics: []string{"words", "word-counts"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i.Close(context.Background()) })
	return &task{db: db, inst: i}
}

// process runs recs in batches of n and returns every output.
func (tk *task) process(t *testing.T, recs []abi.Record, n int) []host.Output {
	t.Helper()
	var out []host.Output
	for len(recs) > 0 {
		b := recs[:min(n, len(recs))]
		recs = recs[len(b):]
		var err error
		if out, err = tk.inst.Process(t.Context(), b, out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// counts returns the counts store as "key=value" lines, values in hex.
func (tk *task) counts(t *testing.T) []string {
	t.Helper()
	it, err := tk.db.Range(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var kv []string
	for it.Next() {
		kv = append(kv, fmt.Sprintf("%q=%x", it.Key(), it.Value()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return kv
}

// sentences are the stage-one inputs: plugins/wordcount's test sentences,
// the corners of Go's Unicode handling (special casing, title case, white
// space outside Latin-1, invalid and truncated UTF-8), and random mixes of
// those pieces.
func sentences() [][]byte {
	fixed := []string{
		"the cat saw the dog",
		`Hello, World! "hello" (world)...`, "don't—stop HELLO?",
		"Été\tÉTÉ\n  «été»\u00a0Ünïcode",
		"", "   ", "... !! -- ?", "\u2014",
		"ΣΊΣΥΦΟΣ ǄǅǆDž İstanbul \u212a Å ẞ Ⱥȿ ᾈ",
		"日本語、テキスト。 ＡＢＣ！ ｆｕｌｌ",
		"emoji 👍🏽 😀! e\u0301 \u00ad soft",
		"a\u0085b\u00a0c\u1680d\u2000e\u2028f\u3000g\u200bh\u180ei\u202fj",
		"caf\xc3 \xff\xfeABC\xff \xc0\xaf \xed\xa0\x80x \xf4\x90\x80\x80 \xe2\x80",
		"..\xe2\x80\x94.. a\xe2\x80\x9d\xff ¿\xff? \xe2\x80\x9cQuote\xe2\x80",
		"\xf0\x9f\x98 \xf0\x9f\x98\x80\x80 \xbf\xbf\xbf\xbf\xbf!",
	}
	var out [][]byte
	for _, s := range fixed {
		out = append(out, []byte(s))
	}
	pieces := []string{
		"a", "Z", "word", "WORD", "Mixed", " ", "  ", "\t", "\n", "\u00a0", "\u3000",
		".", ",", "!", "?", "'", "\"", "(", ")", "-", "—", "…", "«", "»", "¡", "¿", "、",
		"é", "É", "ß", "ẞ", "Σ", "σ", "ς", "İ", "ı", "Ǆ", "ǅ", "\u212a", "Ω", "Ⱥ", "ᾈ", "Ａ",
		"日", "👍", "\u0301", "\u200b", "\u0085",
		"\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90", "\x80",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 400 {
		var b []byte
		for range rng.IntN(30) {
			b = append(b, pieces[rng.IntN(len(pieces))]...)
		}
		out = append(out, b)
	}
	return out
}

// TestSameAsGo runs plugins/wordcount and the AssemblyScript wordcount over
// the same records through the host: both stages must emit the same
// records and leave the same counts, and either module must be able to
// continue counting in the other's store.
func TestSameAsGo(t *testing.T) {
	asWasm := asModule(t, "plugins/wordcount-as.wasm")
	goWasm, err := os.ReadFile(plugintest.Build(t, "plugins/wordcount"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := host.NewRuntime(t.Context(), host.RuntimeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	goMod, asMod := compile(t, rt, "wordcount", goWasm), compile(t, rt, "wordcount-as", asWasm)
	goTask, asTask := newTask(t, goMod, nil), newTask(t, asMod, nil)

	// Stage one.
	var recs []abi.Record
	for i, s := range sentences() {
		recs = append(recs, abi.Record{Topic: "sentences", Offset: int64(i), Value: s})
	}
	recs = append(recs, abi.Record{Topic: "sentences", Offset: int64(len(recs))}) // a null value
	goWords, asWords := goTask.process(t, recs, 50), asTask.process(t, recs, 50)
	same(t, "stage one", goWords, asWords)
	if len(goWords) < 500 {
		t.Fatalf("stage one emitted only %d words", len(goWords))
	}
	for _, w := range []string{"hello", "été", "don't—stop", "σίσυφοσ"} {
		if !slices.ContainsFunc(goWords, func(o host.Output) bool { return string(o.Key) == w }) {
			t.Errorf("stage one did not emit %q", w)
		}
	}

	// Stage two: the words come back on the words topic, with records the
	// plugin skips (null and empty keys) among them.
	recs = recs[:0]
	for i, o := range goWords {
		if o.Topic != "words" || string(o.Value) != "1" {
			t.Fatalf("stage one emitted %+v", o)
		}
		recs = append(recs, abi.Record{Topic: "words", Offset: int64(i), Key: o.Key, Value: o.Value})
		if i%100 == 0 {
			recs = append(recs, abi.Record{Topic: "words", Value: []byte("1")}, abi.Record{Topic: "words", Key: []byte{}})
		}
	}
	goCounts, asCounts := goTask.process(t, recs, 100), asTask.process(t, recs, 100)
	same(t, "stage two", goCounts, asCounts)
	if got, want := asTask.counts(t), goTask.counts(t); !slices.Equal(got, want) {
		t.Errorf("counts store differs:\nas: %s\ngo: %s", strings.Join(got, " "), strings.Join(want, " "))
	}

	// One store, the modules taking turns: each reads the other's counts.
	shared := newTask(t, asMod, nil)
	goShared := newTask(t, goMod, shared.db)
	var mixed []host.Output
	for k := 0; k < len(recs); k += 100 {
		tk := shared
		if k/100%2 == 1 {
			tk = goShared
		}
		mixed = append(mixed, tk.process(t, recs[k:min(k+100, len(recs))], 100)...)
	}
	same(t, "stage two, modules taking turns", goCounts, mixed)
}

// same fails t when the two output lists differ, naming the first
// difference.
func same(t *testing.T, what string, want, got []host.Output) {
	t.Helper()
	for i := range min(len(want), len(got)) {
		w, g := want[i], got[i]
		if w.Topic != g.Topic || !sameBytes(w.Key, g.Key) || !sameBytes(w.Value, g.Value) || len(w.Headers) != len(g.Headers) {
			t.Fatalf("%s: output %d is %s %q=%q, want %s %q=%q", what, i, g.Topic, g.Key, g.Value, w.Topic, w.Key, w.Value)
		}
	}
	if len(want) != len(got) {
		t.Fatalf("%s: %d outputs, want %d", what, len(got), len(want))
	}
}

// sameBytes is bytes.Equal that also tells null from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}
