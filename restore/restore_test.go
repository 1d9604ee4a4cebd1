package restore_test

import (
	"maps"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

const topic = "app-counts-changelog"

func setup(t *testing.T) (addr string, produce func(kvs ...[2]string)) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr = c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return addr, func(kvs ...[2]string) {
		t.Helper()
		for _, kv := range kvs {
			r := &kgo.Record{Topic: topic, Partition: 1, Key: []byte(kv[0])}
			if kv[1] != "<delete>" {
				r.Value = []byte(kv[1])
			}
			if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func contents(t *testing.T, db *state.DB) map[string]string {
	t.Helper()
	it, err := db.Range(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	m := map[string]string{}
	for it.Next() {
		m[string(it.Key())] = string(it.Value())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRestore replays a changelog with overwrites and tombstones into an
// empty store, then replays only what came after, then nothing.
func TestRestore(t *testing.T) {
	addr, produce := setup(t)
	dir := t.TempDir()
	open := func() *state.DB {
		db, err := state.Open(state.Config{Dir: dir, Stores: []string{"counts"}})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	logs := []restore.Changelog{{Store: 0, Topic: topic, Partition: 1}}
	run := func(db *state.DB) (restore.Result, []restore.BatchInfo) {
		var batches []restore.BatchInfo
		res, err := restore.Restore(t.Context(), restore.Config{
			Brokers:  []string{addr},
			Task:     "app/1",
			Listener: restore.Listener{Batch: func(b restore.BatchInfo) { batches = append(batches, b) }},
		}, db, logs)
		if err != nil {
			t.Fatal(err)
		}
		return res, batches
	}

	produce([2]string{"a", "1"}, [2]string{"b", "1"}, [2]string{"a", "2"}, [2]string{"c", "1"}, [2]string{"b", "<delete>"})
	db := open()
	res, batches := run(db)
	if res.Records != 5 {
		t.Errorf("first restore replayed %d records, want 5", res.Records)
	}
	if len(batches) == 0 || batches[len(batches)-1].Remaining != 0 {
		t.Errorf("progress did not end at 0 remaining: %+v", batches)
	}
	if got, want := contents(t, db), map[string]string{"a": "2", "c": "1"}; !maps.Equal(got, want) {
		t.Errorf("after first restore: %v, want %v", got, want)
	}
	off, err := db.Offsets()
	if err != nil || off.Changelog["counts"] != 5 {
		t.Errorf("stored changelog offset = %d (%v), want 5", off.Changelog["counts"], err)
	}
	db.Close()

	// A reopened store replays only the tail.
	produce([2]string{"d", "1"}, [2]string{"a", "<delete>"})
	db = open()
	if res, _ := run(db); res.Records != 2 {
		t.Errorf("second restore replayed %d records, want 2", res.Records)
	}
	if got, want := contents(t, db), map[string]string{"c": "1", "d": "1"}; !maps.Equal(got, want) {
		t.Errorf("after second restore: %v, want %v", got, want)
	}
	if res, _ := run(db); res.Records != 0 {
		t.Errorf("third restore replayed %d records, want 0", res.Records)
	}
	db.Close()
}

// TestRestoreLarge checks that a restore spanning many fetches ends exactly
// at the changelog's end.
func TestRestoreLarge(t *testing.T) {
	addr, produce := setup(t)
	var kvs [][2]string
	for i := range 5000 {
		kvs = append(kvs, [2]string{"k" + strconv.Itoa(i%1000), strconv.Itoa(i)})
	}
	produce(kvs...)
	db, err := state.Open(state.Config{Dir: t.TempDir(), Stores: []string{"counts"}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := restore.Restore(t.Context(), restore.Config{Brokers: []string{addr}, Settings: restore.Settings{FetchMaxBytes: 4 << 10}},
		db, []restore.Changelog{{Store: 0, Topic: topic, Partition: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 5000 {
		t.Errorf("replayed %d records, want 5000", res.Records)
	}
	got := contents(t, db)
	if len(got) != 1000 || got["k7"] != "4007" {
		t.Errorf("store has %d keys, k7=%q; want 1000 keys, k7=4007", len(got), got["k7"])
	}
}
