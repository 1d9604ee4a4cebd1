package host

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/internal/plugintest"
)

// asModule reads a module built from the AssemblyScript sources.
func asModule(b *testing.B, file string) []byte {
	b.Helper()
	wasm, err := os.ReadFile(plugintest.BuildAS(b, file))
	if err != nil {
		b.Fatal(err)
	}
	return wasm
}

// BenchmarkProcessWordcount runs plugins/wordcount (Go SDK) and
// plugins/wordcount-as (AssemblyScript SDK) over the same batches of 1,000
// records through the host, one stage at a time:
//
//   - split: sentences of 10 words (some capitalized, some with
//     punctuation), each emitted to words: 10 emits per record;
//   - count: records of the words topic over a vocabulary of 500 words,
//     each a kv_get, a kv_put and an emit.
//
// As in BenchmarkProcessGetPut nothing is committed, so the count stage's
// reads after the first batch are served by the write buffer. wasm-bytes
// is the module's size.
func BenchmarkProcessWordcount(b *testing.B) {
	vocab := make([]string, 500)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("word%03d", i)
	}
	sentences := make([]abi.Record, 1000)
	for k := range sentences {
		var s strings.Builder
		for w := range 10 {
			word := vocab[(k*10+w*7)%len(vocab)]
			switch w % 5 {
			case 1:
				word = strings.ToUpper(word[:1]) + word[1:]
			case 3:
				word = `"` + word + `",`
			}
			if w > 0 {
				s.WriteByte(' ')
			}
			s.WriteString(word)
		}
		sentences[k] = abi.Record{Topic: "sentences", Offset: int64(k), Value: []byte(s.String())}
	}
	words := make([]abi.Record, 1000)
	for k := range words {
		words[k] = abi.Record{Topic: "words", Offset: int64(k), Key: []byte(vocab[(k*7)%len(vocab)]), Value: []byte("1")}
	}

	modules := []struct {
		name string
		wasm func(b *testing.B) []byte
	}{
		{"go", func(b *testing.B) []byte {
			wasm, err := os.ReadFile(plugintest.Build(b, "plugins/wordcount"))
			if err != nil {
				b.Fatal(err)
			}
			return wasm
		}},
		{"as", func(b *testing.B) []byte { return asModule(b, "plugins/wordcount-as.wasm") }},
	}
	for _, stage := range []struct {
		name string
		recs []abi.Record
	}{{"split", sentences}, {"count", words}} {
		for _, mod := range modules {
			b.Run(stage.name+"/"+mod.name, func(b *testing.B) {
				wasm := mod.wasm(b)
				rt := newRuntime(b, RuntimeConfig{})
				m, err := rt.Compile(b.Context(), "wordcount-"+mod.name, wasm, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				db := openDB(b, "counts")
				i := instantiate(b, m, InstanceConfig{DB: db, Stores: []string{"counts"}, Topics: []string{"words", "word-counts"}})
				var out []Output
				batches := 0
				b.ReportAllocs()
				for b.Loop() {
					if out, err = i.Process(b.Context(), stage.recs, out[:0]); err != nil {
						b.Fatal(err)
					}
					batches++
				}
				if want := map[string]int{"split": 10, "count": 1}[stage.name] * len(stage.recs); len(out) != want {
					b.Fatalf("a batch emitted %d records, want %d", len(out), want)
				}
				n := float64(batches * len(stage.recs))
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
				b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(len(wasm)), "wasm-bytes")
			})
		}
	}
}
