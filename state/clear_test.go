package state

import (
	"errors"
	"maps"
	"testing"
)

// TestClearStore clears one of two stores: its keys and changelog offset go,
// the other store, its offset and the input offsets stay, also after a
// reopen, and the cleared store takes changelog records again.
func TestClearStore(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, "a", "b")
	for _, k := range []string{"k1", "k2", "k3"} {
		mustPut(t, db, 0, k, "a-"+k)
		mustPut(t, db, 1, k, "b-"+k)
	}
	mustCommit(t, db, Offsets{Changelog: map[string]int64{"a": 3, "b": 7}, Input: map[string]int64{"in": 42}})

	mustPut(t, db, 0, "k9", "x")
	if err := db.ClearStore(0); !errors.Is(err, ErrBufferNotEmpty) {
		t.Fatalf("ClearStore with buffered writes = %v, want ErrBufferNotEmpty", err)
	}
	db.Discard()
	it, err := db.Range(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ClearStore(0); !errors.Is(err, ErrIteratorsOpen) {
		t.Fatalf("ClearStore with an open iterator = %v, want ErrIteratorsOpen", err)
	}
	it.Close()
	if err := db.ClearStore(5); !errors.Is(err, ErrUnknownStore) {
		t.Fatalf("ClearStore(5) = %v, want ErrUnknownStore", err)
	}

	if err := db.ClearStore(0); err != nil {
		t.Fatal(err)
	}
	check := func(db *DB, when string) {
		t.Helper()
		if got := scan(t, db, 0, nil, nil); len(got) != 0 {
			t.Errorf("%s: cleared store holds %v", when, got)
		}
		if got := scan(t, db, 1, nil, nil); len(got) != 3 || got[0] != (kv{"k1", "b-k1"}) {
			t.Errorf("%s: other store holds %v, want its 3 keys", when, got)
		}
		off, err := db.Offsets()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int64{"b": 7}; !maps.Equal(off.Changelog, want) {
			t.Errorf("%s: changelog offsets %v, want %v", when, off.Changelog, want)
		}
		if want := map[string]int64{"in": 42}; !maps.Equal(off.Input, want) {
			t.Errorf("%s: input offsets %v, want %v", when, off.Input, want)
		}
	}
	check(db, "after clear")
	if err := db.Flush(); err != nil {
		t.Fatalf("Flush after clear: %v", err)
	}
	db.Close()

	db = openTest(t, dir, "a", "b")
	check(db, "after reopen")
	if err := db.ApplyChangelog(0, []Change{{Key: []byte("n"), Value: []byte("1")}}, 11); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, db, 0, "n"); got != "1" {
		t.Errorf("cleared store after ApplyChangelog: n = %q, want 1", got)
	}
}

// TestApplyChangelogKeptByClose checks what an interrupted restore relies
// on: records applied without the WAL and without Flush are still there,
// with their offset, after a clean Close (RocksDB flushes unpersisted
// memtables when it closes).
func TestApplyChangelogKeptByClose(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, "a")
	if err := db.ApplyChangelog(0, []Change{{Key: []byte("k"), Value: []byte("v")}}, 5); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openTest(t, dir, "a")
	off, err := db.Offsets()
	if err != nil {
		t.Fatal(err)
	}
	if off.Changelog["a"] != 5 || get(t, db, 0, "k") != "v" {
		t.Errorf("after close and reopen: offset %d, k = %q; want 5 and v", off.Changelog["a"], get(t, db, 0, "k"))
	}
}
