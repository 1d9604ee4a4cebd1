package restore_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// TestTail catches a store up with its changelog, then keeps applying what
// is produced after, tombstones included, until its context ends; the store
// keeps its changelog offset when reopened.
func TestTail(t *testing.T) {
	addr, produce := setup(t)
	produce([2]string{"a", "1"}, [2]string{"b", "1"}, [2]string{"a", "2"})
	dir := t.TempDir()
	db, err := state.Open(state.Config{Dir: dir, Stores: []string{"counts"}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var last restore.TailInfo
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- restore.Tail(ctx, restore.Config{Brokers: []string{addr}, Task: "app/1"}, db,
			[]restore.Changelog{{Store: 0, Topic: topic, Partition: 1}},
			func(i restore.TailInfo) {
				mu.Lock()
				last = i
				mu.Unlock()
			})
	}()
	waitNext := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			mu.Lock()
			i := last
			mu.Unlock()
			if i.Next["counts"] == want && i.Lag == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tail at %v lag %d, want offset %d", i.Next, i.Lag, want)
			}
			<-tick.C
		}
	}
	waitNext(3) // the catch-up restore
	produce([2]string{"b", "<delete>"}, [2]string{"c", "1"}, [2]string{"a", "3"})
	waitNext(6) // tailed
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail ended with %v, want nil on cancel", err)
	}
	if got, want := contents(t, db), map[string]string{"a": "3", "c": "1"}; !maps.Equal(got, want) {
		t.Errorf("store holds %v, want %v", got, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = state.Open(state.Config{Dir: dir, Stores: []string{"counts"}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	off, err := db.Offsets()
	if err != nil {
		t.Fatal(err)
	}
	if off.Changelog["counts"] != 6 {
		t.Errorf("reopened store at changelog offset %d, want 6", off.Changelog["counts"])
	}
}
