package state

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// changes parses "k=v" puts and "-k" tombstones.
func changes(ops ...string) []Change {
	var out []Change
	for _, op := range ops {
		if op[0] == '-' {
			out = append(out, Change{Key: []byte(op[1:]), Delete: true})
			continue
		}
		k, v, _ := strings.Cut(op, "=")
		out = append(out, Change{Key: []byte(k), Value: []byte(v)})
	}
	return out
}

// TestIngestChangelog ingests chunks of changelog records and checks the
// store against the same chunks written with ApplyChangelog: the same keys
// and values, the same offset, and no record left in a memtable.
func TestIngestChangelog(t *testing.T) {
	tests := []struct {
		name   string
		chunks [][]Change
		want   []kv
	}{
		{
			name:   "puts out of order",
			chunks: [][]Change{changes("c=1", "a=1", "b=1")},
			want:   []kv{{"a", "1"}, {"b", "1"}, {"c", "1"}},
		},
		{
			name:   "overwrites keep the last value",
			chunks: [][]Change{changes("a=1", "b=1", "a=2", "a=3", "b=2")},
			want:   []kv{{"a", "3"}, {"b", "2"}},
		},
		{
			name:   "delete within a chunk",
			chunks: [][]Change{changes("a=1", "b=1", "-a", "c=1", "-c", "c=2")},
			want:   []kv{{"b", "1"}, {"c", "2"}},
		},
		{
			name:   "delete of a key from an earlier chunk",
			chunks: [][]Change{changes("a=1", "b=1", "c=1"), changes("-b", "d=1"), changes("-a")},
			want:   []kv{{"c", "1"}, {"d", "1"}},
		},
		{
			name:   "put again after a delete in an earlier chunk",
			chunks: [][]Change{changes("a=1", "b=1"), changes("-a", "-b"), changes("a=2"), changes("b=3", "-b", "b=4")},
			want:   []kv{{"a", "2"}, {"b", "4"}},
		},
		{
			name:   "only tombstones into an empty store",
			chunks: [][]Change{changes("-a", "-b"), changes("a=1"), changes("-x")},
			want:   []kv{{"a", "1"}},
		},
		{
			name:   "empty chunk advances the offset",
			chunks: [][]Change{changes("a=1"), nil},
			want:   []kv{{"a", "1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sst := openTest(t, t.TempDir(), "s")
			batch := openTest(t, t.TempDir(), "s")
			var next int64
			for _, c := range tt.chunks {
				next += int64(len(c)) + 1 // an offset gap, as compaction leaves
				if err := batch.ApplyChangelog(0, slices.Clone(c), next); err != nil {
					t.Fatal(err)
				}
				if err := sst.IngestChangelog(0, c, next); err != nil {
					t.Fatal(err)
				}
			}
			got, fromBatch := scan(t, sst, 0, nil, nil), scan(t, batch, 0, nil, nil)
			if !slices.Equal(got, tt.want) || !slices.Equal(fromBatch, tt.want) {
				t.Errorf("ingested %v, applied %v, want %v", got, fromBatch, tt.want)
			}
			off, err := sst.Offsets()
			if err != nil || off.Changelog["s"] != next {
				t.Errorf("offset %d (%v), want %d", off.Changelog["s"], err, next)
			}
			if n := sst.rdb.GetPropertyCF("rocksdb.num-entries-active-mem-table", sst.cfs[0]); n != "0" {
				t.Errorf("%s entries in the memtable, want 0", n)
			}
			left, err := os.ReadDir(filepath.Join(sst.dir, ingestDir))
			if err != nil || len(left) != 0 {
				t.Errorf("ingest dir holds %v (%v), want nothing", left, err)
			}
		})
	}
}

// TestIngestChangelogReopen checks that ingested data and its offset
// survive a clean close, and that a file left behind by a crash mid-build
// is removed by Open.
func TestIngestChangelogReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(Config{Dir: dir, Stores: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	var c []Change
	for i := range 1000 {
		c = append(c, Change{Key: []byte("k" + strconv.Itoa(i%300)), Value: []byte(strconv.Itoa(i))})
	}
	if err := db.IngestChangelog(0, c, 1000); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.MkdirAll(filepath.Join(dir, ingestDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ingestDir, "changelog.sst"), []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, dir, "s")
	if got := scan(t, db, 0, nil, nil); len(got) != 300 || get(t, db, 0, "k7") != "907" {
		t.Errorf("after reopen: %d keys, k7=%s; want 300, 907", len(got), get(t, db, 0, "k7"))
	}
	off, err := db.Offsets()
	if err != nil || off.Changelog["s"] != 1000 {
		t.Errorf("offset %d (%v), want 1000", off.Changelog["s"], err)
	}
	if _, err := os.Stat(filepath.Join(dir, ingestDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ingest dir after Open: %v, want it removed", err)
	}
	if empty, err := db.Empty(0); err != nil || empty {
		t.Errorf("Empty = %t, %v; want false", empty, err)
	}
}

// TestIngestChangelogErrors checks the preconditions.
func TestIngestChangelogErrors(t *testing.T) {
	db := openTest(t, t.TempDir(), "s")
	if empty, err := db.Empty(0); err != nil || !empty {
		t.Errorf("Empty of a new store = %t, %v; want true", empty, err)
	}
	mustPut(t, db, 0, "a", "1")
	if err := db.IngestChangelog(0, changes("b=1"), 1); !errors.Is(err, ErrBufferNotEmpty) {
		t.Errorf("with buffered writes: %v, want ErrBufferNotEmpty", err)
	}
	db.Discard()
	if err := db.IngestChangelog(3, changes("b=1"), 1); !errors.Is(err, ErrUnknownStore) {
		t.Errorf("unknown store: %v, want ErrUnknownStore", err)
	}
	db.Close()
	if err := db.IngestChangelog(0, changes("b=1"), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

// TestSorter checks the sort behind IngestChangelog against a map of
// latest values, for keys that the 8-byte radix prefix alone orders and
// for keys it cannot: shared long prefixes, short keys that differ only by
// trailing zero bytes, and empty keys.
func TestSorter(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	random := func(n, keys int, key func(int) string) []Change {
		var out []Change
		for i := range n {
			c := Change{Key: []byte(key(rng.IntN(keys))), Value: []byte(strconv.Itoa(i))}
			if rng.IntN(5) == 0 {
				c.Value, c.Delete = nil, true
			}
			out = append(out, c)
		}
		return out
	}
	tests := []struct {
		name    string
		changes []Change
	}{
		{"empty", nil},
		{"one", changes("a=1")},
		{"hashed keys", random(5000, 3000, func(k int) string { return fmt.Sprintf("%016x", uint64(k)*0x9e3779b97f4a7c15) })},
		{"shared prefixes", random(5000, 1000, func(k int) string { return fmt.Sprintf("user-00000%05d", k) })},
		{"short keys and zero bytes", random(2000, 40, func(k int) string {
			return strings.Repeat("\x00", k%3) + string(rune('a'+k/3)) + strings.Repeat("\x00", k%4)
		})},
		{"empty key", changes("=1", "a=1", "-", "=2", "\x00=3")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			last := map[string]Change{}
			for _, c := range tt.changes {
				last[string(c.Key)] = c
			}
			keys := slices.Sorted(maps.Keys(last))
			var s sorter
			got := s.latest(tt.changes)
			if len(got) != len(keys) {
				t.Fatalf("%d changes, want %d", len(got), len(keys))
			}
			for i, k := range keys {
				if string(got[i].Key) != k || string(got[i].Value) != string(last[k].Value) || got[i].Delete != last[k].Delete {
					t.Fatalf("change %d = %q=%q (delete %t), want %q=%q (delete %t)",
						i, got[i].Key, got[i].Value, got[i].Delete, k, last[k].Value, last[k].Delete)
				}
			}
		})
	}
}
