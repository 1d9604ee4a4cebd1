package state

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
)

func TestOpenValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		errIs  error
		stores []string
	}{
		{name: "empty dir", cfg: Config{Stores: []string{"a"}}, errIs: ErrInvalidConfig},
		{name: "empty store name", cfg: Config{Dir: "x", Stores: []string{"a", ""}}, errIs: ErrInvalidConfig},
		{name: "duplicate store", cfg: Config{Dir: "x", Stores: []string{"a", "a"}}, errIs: ErrInvalidConfig},
		{name: "reserved store", cfg: Config{Dir: "x", Stores: []string{metaCF}}, errIs: ErrInvalidConfig},
		{name: "no stores", cfg: Config{Dir: "x"}},
		{name: "stores", cfg: Config{Dir: "x", Stores: []string{"b", "a", "default"}}, stores: []string{"b", "a", "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Dir != "" {
				tt.cfg.Dir = filepath.Join(t.TempDir(), "nested", tt.cfg.Dir)
			}
			db, err := Open(tt.cfg)
			if tt.errIs != nil {
				if !errors.Is(err, tt.errIs) {
					t.Fatalf("Open error %v, want %v", err, tt.errIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db.Close()
			if got := db.Stores(); !slices.Equal(got, tt.stores) {
				t.Errorf("Stores() = %q, want %q", got, tt.stores)
			}
			for i, s := range tt.stores {
				if id, ok := db.StoreID(s); !ok || id != i {
					t.Errorf("StoreID(%q) = %d, %v; want %d, true", s, id, ok, i)
				}
			}
			if _, ok := db.StoreID("missing"); ok {
				t.Errorf("StoreID(missing) ok")
			}
		})
	}
}

// TestReopenStores checks that store IDs follow the configured order, that
// new stores get column families and that unconfigured ones are kept.
func TestReopenStores(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, "a", "b")
	mustPut(t, db, 0, "k", "in a")
	mustPut(t, db, 1, "k", "in b")
	mustCommit(t, db, Offsets{})
	db.Close()

	tests := []struct {
		name   string
		stores []string
		want   map[string]string // store -> value of k
	}{
		{name: "reordered", stores: []string{"b", "a"}, want: map[string]string{"a": "in a", "b": "in b"}},
		{name: "new store", stores: []string{"c", "a"}, want: map[string]string{"a": "in a", "c": "<none>"}},
		{name: "dropped from config is kept", stores: []string{"b", "c"}, want: map[string]string{"b": "in b", "c": "<none>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, dir, tt.stores...)
			defer db.Close()
			for s, want := range tt.want {
				id, _ := db.StoreID(s)
				if got := get(t, db, id, "k"); got != want {
					t.Errorf("store %s: Get(k) = %q, want %q", s, got, want)
				}
			}
		})
	}
}

func TestReadYourWrites(t *testing.T) {
	db := openTest(t, t.TempDir(), "s", "t")
	mustPut(t, db, 0, "stored", "old")
	mustPut(t, db, 0, "gone", "x")
	mustCommit(t, db, Offsets{})

	tests := []struct {
		name  string
		write func(t *testing.T)
		store int
		key   string
		want  string
	}{
		{name: "stored only", write: func(*testing.T) {}, key: "stored", want: "old"},
		{name: "missing", write: func(*testing.T) {}, key: "nope", want: "<none>"},
		{name: "buffered new key", write: func(t *testing.T) { mustPut(t, db, 0, "new", "v") }, key: "new", want: "v"},
		{name: "buffered overrides stored", write: func(t *testing.T) { mustPut(t, db, 0, "stored", "new") }, key: "stored", want: "new"},
		{name: "latest of several", write: func(t *testing.T) {
			for i := range 5 {
				mustPut(t, db, 0, "k", fmt.Sprint("v", i))
			}
		}, key: "k", want: "v4"},
		{name: "shorter overwrite", write: func(t *testing.T) {
			mustPut(t, db, 0, "short", "long value")
			mustPut(t, db, 0, "short", "ab")
		}, key: "short", want: "ab"},
		{name: "empty value", write: func(t *testing.T) { mustPut(t, db, 0, "empty", "") }, key: "empty", want: ""},
		{name: "delete hides stored", write: func(t *testing.T) { mustDelete(t, db, 0, "gone") }, key: "gone", want: "<none>"},
		{name: "put after delete", write: func(t *testing.T) {
			mustDelete(t, db, 0, "again")
			mustPut(t, db, 0, "again", "back")
		}, key: "again", want: "back"},
		{name: "stores are separate", write: func(t *testing.T) { mustPut(t, db, 0, "sep", "in s") }, store: 1, key: "sep", want: "<none>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.write(t)
			if got := get(t, db, tt.store, tt.key); got != tt.want {
				t.Errorf("Get(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}

	t.Run("committed", func(t *testing.T) {
		mustCommit(t, db, Offsets{})
		if got := get(t, db, 0, "gone"); got != "<none>" {
			t.Errorf("deleted key after commit = %q", got)
		}
		if got := get(t, db, 0, "stored"); got != "new" {
			t.Errorf("stored key after commit = %q, want new", got)
		}
		if got := get(t, db, 0, "empty"); got != "" {
			t.Errorf("empty value after commit = %q", got)
		}
	})
}

func TestRange(t *testing.T) {
	db := openTest(t, t.TempDir(), "s", "other")
	for _, k := range []string{"a", "c", "e", "g", "i"} {
		mustPut(t, db, 0, k, "db-"+k)
	}
	mustPut(t, db, 1, "b", "other store")
	mustCommit(t, db, Offsets{})
	mustPut(t, db, 0, "b", "buf-b")     // new key between stored ones
	mustPut(t, db, 0, "e", "buf-e")     // overrides stored
	mustDelete(t, db, 0, "g")           // hides stored
	mustDelete(t, db, 0, "h")           // tombstone with nothing under it
	mustPut(t, db, 0, "j", "buf-j")     // after every stored key
	mustPut(t, db, 0, "0", "buf-0")     // before every stored key
	mustPut(t, db, 1, "z", "other buf") // other store

	all := []kv{{"0", "buf-0"}, {"a", "db-a"}, {"b", "buf-b"}, {"c", "db-c"}, {"e", "buf-e"}, {"i", "db-i"}, {"j", "buf-j"}}
	tests := []struct {
		name       string
		start, end string
		want       []kv
	}{
		{name: "unbounded", want: all},
		{name: "start only", start: "c", want: all[3:]},
		{name: "end only", end: "c", want: all[:3]},
		{name: "start on tombstone", start: "g", want: all[5:]},
		{name: "end on tombstone", start: "b", end: "g", want: all[2:5]},
		{name: "between keys", start: "bb", end: "ee", want: all[3:5]},
		{name: "single key", start: "e", end: "e\x00", want: all[4:5]},
		{name: "empty range", start: "e", end: "e"},
		{name: "inverted range", start: "i", end: "a"},
		{name: "past the end", start: "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scan(t, db, 0, b(tt.start), b(tt.end))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Range(%q, %q) = %v, want %v", tt.start, tt.end, got, tt.want)
			}
		})
	}
}

// TestRangeManyBuffered crosses several buffer chunks, with tombstones and
// stored keys interleaved, and writes while iterating.
func TestRangeManyBuffered(t *testing.T) {
	db := openTest(t, t.TempDir(), "s")
	key := func(i int) string { return fmt.Sprintf("k%04d", i) }
	for i := 0; i < 1000; i += 3 {
		mustPut(t, db, 0, key(i), "db")
	}
	mustCommit(t, db, Offsets{})
	want := map[string]string{}
	for i := 0; i < 1000; i += 3 {
		want[key(i)] = "db"
	}
	for i := 0; i < 1000; i += 2 {
		if i%4 == 0 {
			mustDelete(t, db, 0, key(i))
			delete(want, key(i))
		} else {
			mustPut(t, db, 0, key(i), "buf")
			want[key(i)] = "buf"
		}
	}

	it, err := db.Range(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	seen := map[string]string{}
	var prev string
	for it.Next() {
		k := string(it.Key())
		if k <= prev {
			t.Fatalf("key %q after %q", k, prev)
		}
		prev = k
		seen[k] = string(it.Value())
		// A read-modify-write of the current key, as a guest would do.
		mustPut(t, db, 0, k, "seen")
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(seen, want) {
		t.Errorf("Range returned %d keys, want %d", len(seen), len(want))
	}
}

func TestSavepoint(t *testing.T) {
	tests := []struct {
		name   string
		before func(t *testing.T, db *DB) // buffered before the savepoint
		after  func(t *testing.T, db *DB) // undone by the rollback
	}{
		{name: "nothing written", before: func(*testing.T, *DB) {}, after: func(*testing.T, *DB) {}},
		{
			name:   "new keys removed",
			before: func(*testing.T, *DB) {},
			after: func(t *testing.T, db *DB) {
				mustPut(t, db, 0, "n1", "x")
				mustDelete(t, db, 0, "n2")
			},
		},
		{
			name:   "buffered keys restored",
			before: func(t *testing.T, db *DB) { mustPut(t, db, 0, "b", "before"); mustDelete(t, db, 0, "d") },
			after: func(t *testing.T, db *DB) {
				mustPut(t, db, 0, "b", "after1")
				mustPut(t, db, 0, "b", "x") // in place within the interval
				mustPut(t, db, 0, "d", "resurrected")
			},
		},
		{
			name:   "released inner savepoint",
			before: func(t *testing.T, db *DB) { mustPut(t, db, 0, "b", "before") },
			after: func(t *testing.T, db *DB) {
				inner := db.Savepoint()
				mustPut(t, db, 0, "b", "inner")
				mustPut(t, db, 0, "n", "inner")
				db.Release(inner)
				if got := get(t, db, 0, "b"); got != "inner" {
					t.Fatalf("Release undid a write: b = %q", got)
				}
				mustPut(t, db, 0, "b", "after release")
			},
		},
		{
			name:   "stored keys unhidden",
			before: func(*testing.T, *DB) {},
			after:  func(t *testing.T, db *DB) { mustDelete(t, db, 0, "s1"); mustPut(t, db, 0, "s2", "changed") },
		},
		{
			name:   "nested savepoints",
			before: func(t *testing.T, db *DB) { mustPut(t, db, 0, "b", "before") },
			after: func(t *testing.T, db *DB) {
				mustPut(t, db, 0, "b", "one")
				inner := db.Savepoint()
				mustPut(t, db, 0, "b", "two")
				mustPut(t, db, 0, "n", "two")
				db.RollbackTo(inner)
				if got := get(t, db, 0, "b"); got != "one" {
					t.Fatalf("after inner rollback b = %q, want one", got)
				}
				mustPut(t, db, 0, "b", "three")
				db.Savepoint()
				mustPut(t, db, 1, "t", "four")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, t.TempDir(), "s", "t")
			mustPut(t, db, 0, "s1", "stored1")
			mustPut(t, db, 0, "s2", "stored2")
			mustCommit(t, db, Offsets{})
			tt.before(t, db)
			wantPending, wantCount, wantS, wantT := db.Pending(), db.PendingCount(), scan(t, db, 0, nil, nil), scan(t, db, 1, nil, nil)
			wantPending = clonePending(wantPending)

			sp := db.Savepoint()
			tt.after(t, db)
			db.RollbackTo(sp)

			if got := db.Pending(); !equalPending(got, wantPending) {
				t.Errorf("Pending() = %v, want %v", got, wantPending)
			}
			if got := db.PendingCount(); got != wantCount {
				t.Errorf("PendingCount() = %d, want %d", got, wantCount)
			}
			if got := scan(t, db, 0, nil, nil); !slices.Equal(got, wantS) {
				t.Errorf("Range(s) = %v, want %v", got, wantS)
			}
			if got := scan(t, db, 1, nil, nil); !slices.Equal(got, wantT) {
				t.Errorf("Range(t) = %v, want %v", got, wantT)
			}

			// sp is still valid, and the buffer still works after it.
			mustPut(t, db, 0, "later", "v")
			db.RollbackTo(sp)
			if got := get(t, db, 0, "later"); got != "<none>" {
				t.Errorf("second rollback kept later = %q", got)
			}
		})
	}
}

func TestRollbackStalePanics(t *testing.T) {
	tests := []struct {
		name  string
		stale func(db *DB) Savepoint
	}{
		{name: "zero", stale: func(*DB) Savepoint { return Savepoint{} }},
		{name: "after commit", stale: func(db *DB) Savepoint {
			sp := db.Savepoint()
			db.Commit(Offsets{})
			return sp
		}},
		{name: "after discard", stale: func(db *DB) Savepoint {
			sp := db.Savepoint()
			db.Discard()
			return sp
		}},
		{name: "released", stale: func(db *DB) Savepoint {
			sp := db.Savepoint()
			db.Release(sp)
			return sp
		}},
		{name: "later than released", stale: func(db *DB) Savepoint {
			outer := db.Savepoint()
			inner := db.Savepoint()
			db.Release(outer)
			return inner
		}},
		{name: "later than rollback target", stale: func(db *DB) Savepoint {
			outer := db.Savepoint()
			inner := db.Savepoint()
			db.RollbackTo(outer)
			db.Savepoint()
			return inner
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, t.TempDir(), "s")
			sp := tt.stale(db)
			defer func() {
				if recover() == nil {
					t.Errorf("RollbackTo(stale) did not panic")
				}
			}()
			db.RollbackTo(sp)
		})
	}
}

func clonePending(cs []Change) []Change {
	out := make([]Change, len(cs))
	for i, c := range cs {
		out[i] = Change{Store: c.Store, Key: slices.Clone(c.Key), Value: slices.Clone(c.Value), Delete: c.Delete}
	}
	return out
}

func equalPending(a, b []Change) bool {
	return slices.EqualFunc(a, b, func(x, y Change) bool {
		return x.Store == y.Store && string(x.Key) == string(y.Key) && string(x.Value) == string(y.Value) && x.Delete == y.Delete
	})
}

func TestPending(t *testing.T) {
	db := openTest(t, t.TempDir(), "s", "t")
	mustPut(t, db, 1, "b", "1")
	mustPut(t, db, 0, "z", "1")
	mustPut(t, db, 0, "a", "1")
	mustPut(t, db, 0, "a", "2")
	mustDelete(t, db, 0, "z")
	mustPut(t, db, 1, "a", "x")
	mustDelete(t, db, 1, "a")
	mustPut(t, db, 1, "a", "3")
	mustPut(t, db, 0, "m", "")

	want := []Change{
		{Store: 0, Key: []byte("a"), Value: []byte("2")},
		{Store: 0, Key: []byte("m"), Value: []byte{}},
		{Store: 0, Key: []byte("z"), Delete: true},
		{Store: 1, Key: []byte("a"), Value: []byte("3")},
		{Store: 1, Key: []byte("b"), Value: []byte("1")},
	}
	got := db.Pending()
	if !equalPending(got, want) {
		t.Errorf("Pending() = %v, want %v", got, want)
	}
	for _, c := range got {
		if c.Delete && c.Value != nil {
			t.Errorf("tombstone %q has value %q", c.Key, c.Value)
		}
	}
	if n := db.PendingCount(); n != len(want) {
		t.Errorf("PendingCount() = %d, want %d", n, len(want))
	}
	if n := db.PendingBytes(); n < 8 {
		t.Errorf("PendingBytes() = %d, want at least the live keys and values", n)
	}

	db.Discard()
	if got := db.Pending(); len(got) != 0 || db.PendingCount() != 0 || db.PendingBytes() != 0 {
		t.Errorf("after Discard: Pending() = %v, count %d, bytes %d", got, db.PendingCount(), db.PendingBytes())
	}
	if got := get(t, db, 0, "a"); got != "<none>" {
		t.Errorf("after Discard: Get(a) = %q", got)
	}
}

func TestCommitReopen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		write   func(t *testing.T, db *DB)
		off     Offsets
		want    map[string]string // key in store 0 -> value after reopen
		wantOff Offsets
	}{
		{
			name: "first commit",
			write: func(t *testing.T, db *DB) {
				mustPut(t, db, 0, "a", "1")
				mustPut(t, db, 0, "b", "1")
				mustPut(t, db, 1, "x", "1")
			},
			off:     Offsets{Changelog: map[string]int64{"s": 10, "t": 3}, Input: map[string]int64{"in": 100}},
			want:    map[string]string{"a": "1", "b": "1"},
			wantOff: Offsets{Changelog: map[string]int64{"s": 10, "t": 3}, Input: map[string]int64{"in": 100}},
		},
		{
			name: "merge offsets",
			write: func(t *testing.T, db *DB) {
				mustPut(t, db, 0, "a", "2")
				mustDelete(t, db, 0, "b")
			},
			off:     Offsets{Changelog: map[string]int64{"s": 12}, Input: map[string]int64{"in2": 7}},
			want:    map[string]string{"a": "2", "b": "<none>"},
			wantOff: Offsets{Changelog: map[string]int64{"s": 12, "t": 3}, Input: map[string]int64{"in": 100, "in2": 7}},
		},
		{
			name:    "offsets only",
			write:   func(*testing.T, *DB) {},
			off:     Offsets{Input: map[string]int64{"in": 101}},
			want:    map[string]string{"a": "2"},
			wantOff: Offsets{Changelog: map[string]int64{"s": 12, "t": 3}, Input: map[string]int64{"in": 101, "in2": 7}},
		},
		{
			name:  "discarded writes are not committed",
			write: func(t *testing.T, db *DB) { mustPut(t, db, 0, "a", "3"); db.Discard() },
			want:  map[string]string{"a": "2"},
			// Nil maps in Offsets change nothing.
			wantOff: Offsets{Changelog: map[string]int64{"s": 12, "t": 3}, Input: map[string]int64{"in": 101, "in2": 7}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, dir, "s", "t")
			tt.write(t, db)
			mustCommit(t, db, tt.off)
			if n := db.PendingCount(); n != 0 {
				t.Errorf("PendingCount() after Commit = %d", n)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			db = openTest(t, dir, "s", "t")
			for k, want := range tt.want {
				if got := get(t, db, 0, k); got != want {
					t.Errorf("after reopen Get(%q) = %q, want %q", k, got, want)
				}
			}
			off, err := db.Offsets()
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(off.Changelog, tt.wantOff.Changelog) || !maps.Equal(off.Input, tt.wantOff.Input) {
				t.Errorf("Offsets() = %+v, want %+v", off, tt.wantOff)
			}
		})
	}
}

func TestCommitErrors(t *testing.T) {
	db := openTest(t, t.TempDir(), "s")
	mustPut(t, db, 0, "a", "1")
	err := db.Commit(Offsets{Changelog: map[string]int64{"nope": 1}})
	if !errors.Is(err, ErrUnknownStore) {
		t.Fatalf("Commit with unknown changelog store: %v, want ErrUnknownStore", err)
	}
	if n := db.PendingCount(); n != 1 {
		t.Errorf("failed Commit dropped the buffer: PendingCount() = %d", n)
	}
}

func TestOffsetsEmpty(t *testing.T) {
	db := openTest(t, t.TempDir(), "s")
	off, err := db.Offsets()
	if err != nil {
		t.Fatal(err)
	}
	if off.Changelog == nil || off.Input == nil || len(off.Changelog)+len(off.Input) != 0 {
		t.Errorf("Offsets() = %#v, want empty non-nil maps", off)
	}
}

func TestApplyChangelog(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, "s", "t")
	mustPut(t, db, 0, "old", "x")
	mustCommit(t, db, Offsets{Input: map[string]int64{"in": 5}})

	batches := []struct {
		store   int
		changes []Change
		next    int64
	}{
		{store: 0, next: 3, changes: []Change{
			{Key: []byte("a"), Value: []byte("1")},
			{Key: []byte("b"), Value: []byte("1")},
			{Key: []byte("old"), Delete: true},
		}},
		{store: 0, next: 5, changes: []Change{
			{Key: []byte("a"), Value: []byte("2")},
			{Key: []byte("b"), Delete: true},
		}},
		{store: 1, next: 1, changes: []Change{{Key: []byte("z"), Value: []byte("t")}}},
	}
	for _, bt := range batches {
		if err := db.ApplyChangelog(bt.store, bt.changes, bt.next); err != nil {
			t.Fatalf("ApplyChangelog: %v", err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	db.Close()

	db = openTest(t, dir, "s", "t")
	tests := []struct {
		name  string
		store int
		key   string
		want  string
	}{
		{name: "overwritten", key: "a", want: "2"},
		{name: "deleted", key: "b", want: "<none>"},
		{name: "stored then deleted", key: "old", want: "<none>"},
		{name: "other store", store: 1, key: "z", want: "t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(t, db, tt.store, tt.key); got != tt.want {
				t.Errorf("Get(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
	off, err := db.Offsets()
	if err != nil {
		t.Fatal(err)
	}
	wantOff := Offsets{Changelog: map[string]int64{"s": 5, "t": 1}, Input: map[string]int64{"in": 5}}
	if !maps.Equal(off.Changelog, wantOff.Changelog) || !maps.Equal(off.Input, wantOff.Input) {
		t.Errorf("Offsets() = %+v, want %+v", off, wantOff)
	}

	t.Run("needs empty buffer", func(t *testing.T) {
		mustPut(t, db, 0, "k", "v")
		if err := db.ApplyChangelog(0, nil, 6); !errors.Is(err, ErrBufferNotEmpty) {
			t.Errorf("ApplyChangelog with buffered writes: %v, want ErrBufferNotEmpty", err)
		}
		db.Discard()
		if err := db.ApplyChangelog(0, nil, 6); err != nil {
			t.Errorf("ApplyChangelog after Discard: %v", err)
		}
	})
}

func TestClose(t *testing.T) {
	db := openTest(t, t.TempDir(), "s")
	mustPut(t, db, 0, "k", "v")
	it, err := db.Range(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := db.Savepoint()
	for range 2 {
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}

	tests := []struct {
		name string
		call func() error
	}{
		{name: "Get", call: func() error { _, _, err := db.Get(0, []byte("k")); return err }},
		{name: "Put", call: func() error { return db.Put(0, []byte("k"), nil) }},
		{name: "Delete", call: func() error { return db.Delete(0, []byte("k")) }},
		{name: "Range", call: func() error { _, err := db.Range(0, nil, nil); return err }},
		{name: "Commit", call: func() error { return db.Commit(Offsets{}) }},
		{name: "Offsets", call: func() error { _, err := db.Offsets(); return err }},
		{name: "ApplyChangelog", call: func() error { return db.ApplyChangelog(0, nil, 1) }},
		{name: "Flush", call: func() error { return db.Flush() }},
		{name: "open Iterator", call: func() error {
			if it.Next() {
				return errors.New("Next true after Close")
			}
			return it.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", tt.name, err)
			}
		})
	}
	// The methods without an error result do nothing.
	db.RollbackTo(sp)
	db.Discard()
	if db.Pending() != nil || db.PendingCount() != 0 || db.Savepoint() != (Savepoint{}) {
		t.Errorf("buffer methods after Close report a buffer")
	}
}

func TestUnknownStore(t *testing.T) {
	db := openTest(t, t.TempDir(), "s")
	tests := []struct {
		name string
		call func() error
	}{
		{name: "Get", call: func() error { _, _, err := db.Get(1, []byte("k")); return err }},
		{name: "Put", call: func() error { return db.Put(-1, []byte("k"), nil) }},
		{name: "Delete", call: func() error { return db.Delete(2, []byte("k")) }},
		{name: "Range", call: func() error { _, err := db.Range(1, nil, nil); return err }},
		{name: "ApplyChangelog", call: func() error { return db.ApplyChangelog(1, nil, 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrUnknownStore) {
				t.Errorf("%s: %v, want ErrUnknownStore", tt.name, err)
			}
		})
	}
}
