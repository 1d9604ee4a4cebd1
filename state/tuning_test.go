package state

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestStoreOptions opens a database whose stores are tuned differently and
// reads the column family options RocksDB persisted in its OPTIONS file:
// each store has its own, the defaults apply where a store sets nothing,
// and a store cleared and created anew keeps its tuning.
func TestStoreOptions(t *testing.T) {
	budget, err := NewBudget(BudgetConfig{
		Compression:       "lz4",
		MaxBackgroundJobs: 3,
		Stores: map[string]StoreOptions{
			"hot":  {Compaction: "universal", Compression: "zstd"},
			"cold": {Compression: "none"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer budget.Close()
	dir := t.TempDir()
	db, err := Open(Config{Dir: dir, Stores: []string{"hot", "cold", "plain"}, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	want := map[string]map[string]string{
		"hot":   {"compaction_style": "kCompactionStyleUniversal", "compression": "kZSTD"},
		"cold":  {"compaction_style": "kCompactionStyleLevel", "compression": "kNoCompression"},
		"plain": {"compaction_style": "kCompactionStyleLevel", "compression": "kLZ4Compression"},
	}
	check := func(when string) {
		t.Helper()
		cfs, dbOpts := readOptionsFile(t, dir)
		if got := dbOpts["max_background_jobs"]; got != "3" {
			t.Errorf("%s: max_background_jobs = %q, want 3", when, got)
		}
		for store, kv := range want {
			for k, v := range kv {
				if got := cfs[store][k]; got != v {
					t.Errorf("%s: store %s: %s = %q, want %q", when, store, k, got, v)
				}
			}
		}
	}
	check("open")

	hot, _ := db.StoreID("hot")
	if err := db.ClearStore(hot); err != nil {
		t.Fatal(err)
	}
	check("after ClearStore")
}

// readOptionsFile parses the newest OPTIONS-* file of a RocksDB directory:
// the options of each column family by name, and the DB options.
func readOptionsFile(t *testing.T, dir string) (cfs map[string]map[string]string, dbOpts map[string]string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no OPTIONS file in %s: %v", dir, err)
	}
	// OPTIONS-000007 sorts before OPTIONS-000012: the numbers are padded.
	slices.Sort(files)
	f, err := os.Open(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfs, dbOpts = map[string]map[string]string{}, map[string]string{}
	var section map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "[CFOptions "):
			name := strings.Trim(strings.TrimPrefix(line, "[CFOptions "), `"]`)
			section = map[string]string{}
			cfs[name] = section
		case line == "[DBOptions]":
			section = dbOpts
		case strings.HasPrefix(line, "["):
			section = nil
		case section != nil:
			if k, v, ok := strings.Cut(line, "="); ok {
				section[k] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cfs, dbOpts
}
