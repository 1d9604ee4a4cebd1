package host

import (
	"os"

	"fmt"
	"github.com/flowstate/flowstate/internal/plugintest"
	"testing"

	"github.com/flowstate/flowstate/abi"
)

// BenchmarkProcessGetPut runs one Process over 1,000 records, each doing
// one kv_get and one kv_put (testdata/counter.wat with no output topic).
// The same 1,000 keys recur in every batch and nothing is committed, so
// reads after the first batch are served by the write buffer.
//
// The sub-benchmarks run the same work in a WAT guest and in a Go guest
// built with the SDK (which adds Go's own per-record cost in the guest).
func BenchmarkProcessGetPut(b *testing.B) {
	b.Run("wat", func(b *testing.B) {
		rt := newRuntime(b, RuntimeConfig{})
		benchGetPut(b, compile(b, rt, "counter", Limits{}))
	})
	// go-sdk/context-check is the same guest stopped at its timeout by
	// wazero's context check at every loop header, instead of the loop
	// instrumentation of interrupt.go.
	for _, v := range []struct {
		name string
		cfg  RuntimeConfig
	}{{"go-sdk", RuntimeConfig{}}, {"go-sdk/context-check", RuntimeConfig{ContextCheck: true}}} {
		b.Run(v.name, func(b *testing.B) {
			rt := newRuntime(b, v.cfg)
			wasm, err := os.ReadFile(plugintest.Build(b, "host/testdata/getput"))
			if err != nil {
				b.Fatal(err)
			}
			m, err := rt.Compile(b.Context(), "getput", wasm, Limits{})
			if err != nil {
				b.Fatal(err)
			}
			benchGetPut(b, m)
		})
	}
}

func benchGetPut(b *testing.B, m *Module) {
	db := openDB(b, "counts")
	i := instantiate(b, m, InstanceConfig{DB: db, Stores: []string{"counts"}})
	recs := make([]abi.Record, 1000)
	for k := range recs {
		recs[k] = abi.Record{Topic: "in", Offset: int64(k), Key: fmt.Appendf(nil, "key-%04d", k), Value: []byte("v")}
	}
	var out []Output
	var err error
	batches := 0
	b.ReportAllocs()
	for b.Loop() {
		if out, err = i.Process(b.Context(), recs, out[:0]); err != nil {
			b.Fatal(err)
		}
		batches++
	}
	n := float64(batches * len(recs))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkHostCall measures the cost of one host call: the probe makes
// 1,000 iter_close calls with an unknown handle (host: a handle check),
// against 1,000 calls of a probe op that stays in the guest.
func BenchmarkHostCall(b *testing.B) {
	rt := newRuntime(b, RuntimeConfig{})
	m := compile(b, rt, "probe", Limits{})
	for _, bc := range []struct {
		name string
		call call
	}{
		{"host", op(opIterClose, -1)},
		{"guest-only", op(opReturn, 0)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			db := openDB(b, "s1")
			i := instantiate(b, m, InstanceConfig{DB: db, Stores: []string{"s1"}})
			calls := make([]call, 1000)
			for k := range calls {
				calls[k] = bc.call
			}
			recs := []abi.Record{probeRecord(calls...)}
			batches := 0
			b.ReportAllocs()
			for b.Loop() {
				if _, err := i.Process(b.Context(), recs, nil); err != nil {
					b.Fatal(err)
				}
				batches++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(batches*len(calls)), "ns/call")
		})
	}
}

// BenchmarkInstantiate measures Instantiate and Close of a small guest:
// the per-instance host module (compiled and instantiated), the guest, its
// _initialize and version check.
func BenchmarkInstantiate(b *testing.B) {
	rt := newRuntime(b, RuntimeConfig{})
	m := compile(b, rt, "counter", Limits{})
	db := openDB(b, "counts")
	cfg := InstanceConfig{DB: db, Stores: []string{"counts"}, Topics: []string{"out"}}
	b.ReportAllocs()
	for b.Loop() {
		i, err := m.Instantiate(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := i.Close(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcessOverhead measures the fixed cost of a batch: one record
// that makes no host call.
func BenchmarkProcessOverhead(b *testing.B) {
	rt := newRuntime(b, RuntimeConfig{})
	m := compile(b, rt, "probe", Limits{})
	db := openDB(b, "s1")
	i := instantiate(b, m, InstanceConfig{DB: db})
	recs := []abi.Record{probeRecord()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := i.Process(b.Context(), recs, nil); err != nil {
			b.Fatal(err)
		}
	}
}
