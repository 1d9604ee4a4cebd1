package state

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestModel runs random writes, reads, ranges, savepoints, rollbacks,
// releases, commits and discards against a DB and against plain maps, and compares.
func TestModel(t *testing.T) {
	tests := []struct {
		name string
		seed uint64
		keys int // key space: small means many overwrites
		ops  int
	}{
		{name: "dense", seed: 1, keys: 20, ops: 5000},
		{name: "sparse", seed: 2, keys: 2000, ops: 5000},
		{name: "chunk crossing", seed: 3, keys: 300, ops: 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(tt.seed, 0))
			db := openTest(t, t.TempDir(), "a", "b")
			m := newModel(2)
			key := func() string { return fmt.Sprintf("k%05d", r.IntN(tt.keys)) }
			var sps []Savepoint
			var snaps []*model
			for op := range tt.ops {
				store := r.IntN(2)
				switch n := r.IntN(100); {
				case n < 40:
					k, v := key(), fmt.Sprint(op, "-", r.IntN(1000))
					if r.IntN(4) == 0 {
						v = v + string(make([]byte, r.IntN(50)))
					}
					mustPut(t, db, store, k, v)
					m.buf[store][k] = &v
				case n < 50:
					k := key()
					mustDelete(t, db, store, k)
					m.buf[store][k] = nil
				case n < 70:
					k := key()
					if got, want := get(t, db, store, k), m.get(store, k); got != want {
						t.Fatalf("op %d: Get(%d, %q) = %q, want %q", op, store, k, got, want)
					}
				case n < 80:
					start, end := key(), key()
					if r.IntN(5) == 0 {
						start = ""
					}
					if r.IntN(5) == 0 {
						end = ""
					}
					got, want := scan(t, db, store, b(start), b(end)), m.scan(store, start, end)
					if !slices.Equal(got, want) {
						t.Fatalf("op %d: Range(%d, %q, %q) = %d keys, want %d\n got %v\nwant %v", op, store, start, end, len(got), len(want), got, want)
					}
				case n < 88:
					sps = append(sps, db.Savepoint())
					snaps = append(snaps, m.clone())
				case n < 93:
					if len(sps) == 0 {
						continue
					}
					i := r.IntN(len(sps))
					db.RollbackTo(sps[i])
					m = snaps[i].clone()
					sps, snaps = sps[:i+1], snaps[:i+1]
				case n < 95:
					if len(sps) == 0 {
						continue
					}
					i := len(sps) - 1 - r.IntN(min(len(sps), 2)) // mostly the innermost
					db.Release(sps[i])
					sps, snaps = sps[:i], snaps[:i]
				case n < 99:
					mustCommit(t, db, Offsets{})
					m.commit()
					sps, snaps = nil, nil
				default:
					db.Discard()
					m.discard()
					sps, snaps = nil, nil
				}
				if got, want := db.PendingCount(), m.pending(); got != want {
					t.Fatalf("op %d: PendingCount() = %d, want %d", op, got, want)
				}
			}
		})
	}
}

// model is the expected state: stored values and buffered ones, nil meaning
// a buffered Delete.
type model struct {
	stored []map[string]string
	buf    []map[string]*string
}

func newModel(stores int) *model {
	m := &model{}
	for range stores {
		m.stored = append(m.stored, map[string]string{})
		m.buf = append(m.buf, map[string]*string{})
	}
	return m
}

func (m *model) clone() *model {
	c := &model{}
	for i := range m.stored {
		c.stored = append(c.stored, maps.Clone(m.stored[i]))
		c.buf = append(c.buf, maps.Clone(m.buf[i]))
	}
	return c
}

func (m *model) get(store int, k string) string {
	if v, ok := m.buf[store][k]; ok {
		if v == nil {
			return "<none>"
		}
		return *v
	}
	if v, ok := m.stored[store][k]; ok {
		return v
	}
	return "<none>"
}

func (m *model) scan(store int, start, end string) []kv {
	keys := map[string]bool{}
	for k := range m.stored[store] {
		keys[k] = true
	}
	for k := range m.buf[store] {
		keys[k] = true
	}
	var out []kv
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if k < start || (end != "" && k >= end) {
			continue
		}
		if v := m.get(store, k); v != "<none>" {
			out = append(out, kv{k, v})
		}
	}
	return out
}

func (m *model) commit() {
	for s := range m.buf {
		for k, v := range m.buf[s] {
			if v == nil {
				delete(m.stored[s], k)
			} else {
				m.stored[s][k] = *v
			}
		}
	}
	m.discard()
}

func (m *model) discard() {
	for s := range m.buf {
		m.buf[s] = map[string]*string{}
	}
}

func (m *model) pending() int {
	n := 0
	for _, b := range m.buf {
		n += len(b)
	}
	return n
}
