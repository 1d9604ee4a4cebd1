package restore_test

import (
	"maps"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// sstChangelog is a changelog of puts, overwrites and tombstones: keys put
// and deleted chunks apart, put again after their deletion, deleted by the
// last record, and deleted without ever being put. With a chunk of a few
// records, every case crosses chunk boundaries.
func sstChangelog() [][2]string {
	kvs := [][2]string{
		{"early", "1"}, {"gone", "1"}, {"back", "1"}, {"never", "<delete>"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		k := "k" + strconv.Itoa(rng.IntN(60))
		v := strconv.Itoa(i)
		if rng.IntN(4) == 0 {
			v = "<delete>"
		}
		kvs = append(kvs, [2]string{k, v})
	}
	return append(kvs,
		[2]string{"gone", "<delete>"}, [2]string{"back", "<delete>"},
		[2]string{"back", "2"}, [2]string{"early", "3"}, [2]string{"k1", "<delete>"})
}

// TestRestoreSSTMatchesBatch restores the same changelog into a fresh store
// through the batch path and through the SST path, with chunks so small
// that many SST files are ingested, and compares the two stores key by key
// and their changelog offsets.
func TestRestoreSSTMatchesBatch(t *testing.T) {
	addr, produce := setup(t)
	kvs := sstChangelog()
	produce(kvs...)
	logs := []restore.Changelog{{Store: 0, Topic: topic, Partition: 1}}

	restoreInto := func(chunk int) (map[string]string, int64, restore.Result, int) {
		t.Helper()
		db, err := state.Open(state.Config{Dir: t.TempDir(), Stores: []string{"counts"}})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		batches := 0
		var end restore.EndInfo
		res, err := restore.Restore(t.Context(), restore.Config{
			Brokers: []string{addr}, Settings: restore.Settings{SSTChunkBytes: chunk}, Task: "app/1",
			Listener: restore.Listener{
				Batch: func(restore.BatchInfo) { batches++ },
				End:   func(e restore.EndInfo) { end = e },
			},
		}, db, logs)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(end.Paths, res.Paths) {
			t.Errorf("End event paths %v, result paths %v", end.Paths, res.Paths)
		}
		off, err := db.Offsets()
		if err != nil {
			t.Fatal(err)
		}
		return contents(t, db), off.Changelog["counts"], res, batches
	}

	want := map[string]string{}
	for _, kv := range kvs {
		if kv[1] == "<delete>" {
			delete(want, kv[0])
		} else {
			want[kv[0]] = kv[1]
		}
	}
	batchStore, batchOff, batchRes, _ := restoreInto(-1)
	sstStore, sstOff, sstRes, ingests := restoreInto(16) // a chunk is 3 or 4 records
	if got := batchRes.Paths[topic]; got != restore.PathBatch {
		t.Errorf("SSTChunkBytes -1 took path %q, want batch", got)
	}
	if got := sstRes.Paths[topic]; got != restore.PathSST {
		t.Errorf("a fresh store took path %q, want sst", got)
	}
	if ingests < len(kvs)/5 {
		t.Errorf("the SST path ingested %d chunks of %d records, want at least %d", ingests, len(kvs), len(kvs)/5)
	}
	if !maps.Equal(batchStore, want) {
		t.Errorf("batch path store differs from the changelog's latest values:\n got %v\nwant %v", batchStore, want)
	}
	for k, v := range batchStore {
		if got, ok := sstStore[k]; !ok || got != v {
			t.Errorf("key %q: sst path has %q (present %t), batch path %q", k, got, ok, v)
		}
	}
	for k, v := range sstStore {
		if _, ok := batchStore[k]; !ok {
			t.Errorf("key %q: sst path has %q, batch path has none", k, v)
		}
	}
	if _, ok := sstStore["gone"]; ok {
		t.Error(`"gone", deleted chunks after its put, is in the sst path's store`)
	}
	if sstOff != batchOff || sstOff != int64(len(kvs)) {
		t.Errorf("changelog offsets: sst %d, batch %d, want %d", sstOff, batchOff, len(kvs))
	}
	if sstRes.Records != batchRes.Records || sstRes.Records != int64(len(kvs)) {
		t.Errorf("records: sst %d, batch %d, want %d", sstRes.Records, batchRes.Records, len(kvs))
	}
}

// TestRestoreSSTAheadOfOffset covers a crash of the SST path between an
// ingestion and its offset write: the store holds records past its offset
// (or has no offset at all). The next restore takes the batch path from
// the stored offset and ends with the changelog's latest values, also for
// keys whose tombstones it replays a second time.
func TestRestoreSSTAheadOfOffset(t *testing.T) {
	addr, produce := setup(t)
	kvs := sstChangelog()
	produce(kvs...)
	logs := []restore.Changelog{{Store: 0, Topic: topic, Partition: 1}}
	want := map[string]string{}
	for _, kv := range kvs {
		if kv[1] == "<delete>" {
			delete(want, kv[0])
		} else {
			want[kv[0]] = kv[1]
		}
	}
	tests := []struct {
		name   string
		offset int64 // the offset left behind by the crash
	}{
		{"no offset", 0},
		{"one record behind", int64(len(kvs)) - 1},
		{"half the changelog behind", int64(len(kvs)) / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := state.Open(state.Config{Dir: t.TempDir(), Stores: []string{"counts"}})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			cfg := restore.Config{Brokers: []string{addr}, Settings: restore.Settings{SSTChunkBytes: 16}}
			if _, err := restore.Restore(t.Context(), cfg, db, logs); err != nil {
				t.Fatal(err)
			}
			// The crash: the data of every chunk is in, the offset is older.
			if err := db.Commit(state.Offsets{Changelog: map[string]int64{"counts": tt.offset}}); err != nil {
				t.Fatal(err)
			}
			res, err := restore.Restore(t.Context(), cfg, db, logs)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Paths[topic]; got != restore.PathBatch {
				t.Errorf("restore over data took path %q, want batch", got)
			}
			if res.Records != int64(len(kvs))-tt.offset {
				t.Errorf("replayed %d records, want %d", res.Records, int64(len(kvs))-tt.offset)
			}
			if got := contents(t, db); !maps.Equal(got, want) {
				t.Errorf("store differs from the changelog's latest values:\n got %v\nwant %v", got, want)
			}
		})
	}
}
