package state

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// benchChanges returns n changes of 16-byte hashed keys, in no order, and
// random values of valueBytes.
func benchChanges(n, valueBytes int) []Change {
	rng := rand.New(rand.NewPCG(1, 1))
	out := make([]Change, n)
	for i := range out {
		var raw [8]byte
		binary.BigEndian.PutUint64(raw[:], uint64(i)*0x9e3779b97f4a7c15)
		v := make([]byte, valueBytes)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		out[i] = Change{Key: hex.AppendEncode(nil, raw[:]), Value: v}
	}
	return out
}

// BenchmarkIngestChangelog ingests one partition's share of the
// `flowstate bench restore` changelog (125,000 records of 16+100 bytes)
// into an empty store.
func BenchmarkIngestChangelog(b *testing.B) {
	c := benchChanges(125_000, 100)
	db := openTest(b, b.TempDir(), "s")
	b.ReportAllocs()
	for b.Loop() {
		if err := db.IngestChangelog(0, c, int64(len(c))); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := db.ClearStore(0); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(c)*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSorter sorts the same records.
func BenchmarkSorter(b *testing.B) {
	c := benchChanges(125_000, 100)
	var s sorter
	b.ReportAllocs()
	for b.Loop() {
		s.latest(c)
	}
	b.ReportMetric(float64(len(c)*b.N)/b.Elapsed().Seconds(), "records/s")
}
