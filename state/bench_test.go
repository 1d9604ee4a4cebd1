package state

import (
	"encoding/binary"
	"fmt"
	"testing"
)

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user-%08d", i*7919%n)
	}
	return keys
}

// BenchmarkGetPut does a read-modify-write of a counter per record, the
// typical aggregation, against a write buffer of keys distinct keys.
func BenchmarkGetPut(b *testing.B) {
	for _, bc := range []struct {
		keys       int
		savepoints bool // one savepoint per 100 records, as per guest batch, released after it
	}{{1_000, false}, {100_000, false}, {100_000, true}} {
		b.Run(fmt.Sprintf("keys=%d/savepoints=%v", bc.keys, bc.savepoints), func(b *testing.B) {
			db := openTest(b, b.TempDir(), "counts")
			keys := benchKeys(bc.keys)
			var v [8]byte
			for _, k := range keys {
				db.Put(0, k, v[:])
			}
			b.ReportAllocs()
			i := 0
			var sp Savepoint
			for b.Loop() {
				if bc.savepoints && i%100 == 0 {
					if i > 0 {
						db.Release(sp)
					}
					sp = db.Savepoint()
				}
				k := keys[i%len(keys)]
				old, _, err := db.Get(0, k)
				if err != nil {
					b.Fatal(err)
				}
				binary.BigEndian.PutUint64(v[:], binary.BigEndian.Uint64(old)+1)
				if err := db.Put(0, k, v[:]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkRange opens a short Range per record over a large buffer on top
// of stored keys, as a guest scanning a prefix for each record would.
func BenchmarkRange(b *testing.B) {
	const n = 100_000
	db := openTest(b, b.TempDir(), "s")
	keys := benchKeys(n)
	for _, k := range keys[:n/2] {
		db.Put(0, k, k)
	}
	if err := db.Commit(Offsets{}); err != nil {
		b.Fatal(err)
	}
	for _, k := range keys[n/2:] {
		db.Put(0, k, k)
	}
	b.ReportAllocs()
	i, seen := 0, 0
	for b.Loop() {
		start := keys[i%n]
		end := append(start[:len(start):len(start)], 0xff)
		it, err := db.Range(0, start, end)
		if err != nil {
			b.Fatal(err)
		}
		for it.Next() {
			seen++
		}
		if err := it.Close(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if seen == 0 {
		b.Fatal("no keys seen")
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "ranges/s")
}

// BenchmarkCommit buffers a commit's worth of distinct keys and commits
// them with offsets.
func BenchmarkCommit(b *testing.B) {
	for _, perCommit := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("keys=%d", perCommit), func(b *testing.B) {
			db := openTest(b, b.TempDir(), "s")
			keys := benchKeys(1_000_000)
			value := make([]byte, 100)
			off := Offsets{Changelog: map[string]int64{"s": 0}, Input: map[string]int64{"in": 0}}
			b.ReportAllocs()
			i, n := 0, 0
			for b.Loop() {
				for range perCommit {
					db.Put(0, keys[n%len(keys)], value)
					n++
				}
				off.Changelog["s"], off.Input["in"] = int64(n), int64(n)
				if err := db.Commit(off); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
