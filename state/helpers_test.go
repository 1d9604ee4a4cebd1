package state

import (
	"bytes"
	"testing"
)

// openTest opens a DB in dir with stores and closes it at the end of the test.
func openTest(t testing.TB, dir string, stores ...string) *DB {
	t.Helper()
	db, err := Open(Config{Dir: dir, Stores: stores})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustPut(t testing.TB, db *DB, store int, key, value string) {
	t.Helper()
	if err := db.Put(store, []byte(key), []byte(value)); err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
}

func mustDelete(t testing.TB, db *DB, store int, key string) {
	t.Helper()
	if err := db.Delete(store, []byte(key)); err != nil {
		t.Fatalf("Delete %q: %v", key, err)
	}
}

func mustCommit(t testing.TB, db *DB, off Offsets) {
	t.Helper()
	if err := db.Commit(off); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// get returns the value of key, or "<none>".
func get(t testing.TB, db *DB, store int, key string) string {
	t.Helper()
	v, ok, err := db.Get(store, []byte(key))
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	if !ok {
		return "<none>"
	}
	return string(v)
}

// kv is one key and value in the results of scan.
type kv struct{ k, v string }

// scan collects a Range into key/value pairs.
func scan(t testing.TB, db *DB, store int, start, end []byte) []kv {
	t.Helper()
	it, err := db.Range(store, start, end)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	defer it.Close()
	var out []kv
	var prev []byte
	for it.Next() {
		if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
			t.Fatalf("Range: key %q after %q", it.Key(), prev)
		}
		prev = bytes.Clone(it.Key())
		out = append(out, kv{string(it.Key()), string(it.Value())})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("Range: %v", err)
	}
	return out
}

// b returns s as bytes, nil for "".
func b(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}
