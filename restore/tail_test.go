package restore_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/internal/poll"
	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// tailing is one store tailed by a test: its latest TailInfo and Tail's
// result.
type tailing struct {
	db     *state.DB
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	last   restore.TailInfo
}

func startTail(t *testing.T, tl *restore.Tailer, addr, task string, db *state.DB, partition int32) *tailing {
	ctx, cancel := context.WithCancel(t.Context())
	tg := &tailing{db: db, cancel: cancel, done: make(chan error, 1)}
	go func() {
		tg.done <- tl.Tail(ctx, restore.Config{Brokers: []string{addr}, Task: task}, db,
			[]restore.Changelog{{Store: 0, Topic: topic, Partition: partition}},
			func(i restore.TailInfo) {
				tg.mu.Lock()
				tg.last = i
				tg.mu.Unlock()
			})
	}()
	return tg
}

// waitNext waits until the store's changelog offset is want, with no lag.
func (tg *tailing) waitNext(t *testing.T, want int64) {
	t.Helper()
	poll.Until(t, 30*time.Second, func() error {
		tg.mu.Lock()
		i := tg.last
		tg.mu.Unlock()
		if i.Next["counts"] != want || i.Lag != 0 {
			return fmt.Errorf("%s: tail at %v lag %d, want offset %d", i.Task, i.Next, i.Lag, want)
		}
		return nil
	})
}

func (tg *tailing) stop(t *testing.T) {
	t.Helper()
	tg.cancel()
	if err := <-tg.done; err != nil {
		t.Fatalf("tail ended with %v, want nil on cancel", err)
	}
}

func openCounts(t *testing.T, dir string) *state.DB {
	t.Helper()
	db, err := state.Open(state.Config{Dir: dir, Stores: []string{"counts"}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestTail tails two stores through one Tailer: each is caught up with
// its changelog partition, then keeps applying what is produced after,
// tombstones included. A store whose Tail has ended gets nothing more,
// keeps its changelog offset when reopened, and tails again through the
// same Tailer while the other store never stopped.
func TestTail(t *testing.T) {
	addr, produce := setup(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce0 := func(k, v string) {
		t.Helper()
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Partition: 0, Key: []byte(k), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce([2]string{"a", "1"}, [2]string{"b", "1"}, [2]string{"a", "2"})
	produce0("x", "1")

	tl, err := restore.NewTailer(restore.Config{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go tl.Run(t.Context())

	dirA := t.TempDir()
	a := startTail(t, tl, addr, "app/1", openCounts(t, dirA), 1)
	b := startTail(t, tl, addr, "app/0", openCounts(t, t.TempDir()), 0)
	defer b.db.Close()
	a.waitNext(t, 3) // the catch-up restores
	b.waitNext(t, 1)
	produce([2]string{"b", "<delete>"}, [2]string{"c", "1"}, [2]string{"a", "3"})
	produce0("x", "2")
	a.waitNext(t, 6) // tailed
	b.waitNext(t, 2)

	a.stop(t)
	produce([2]string{"a", "9"})
	produce0("y", "1")
	b.waitNext(t, 3) // the other store goes on
	if got, want := contents(t, a.db), map[string]string{"a": "3", "c": "1"}; !maps.Equal(got, want) {
		t.Errorf("ended store holds %v, want %v", got, want)
	}
	if err := a.db.Close(); err != nil {
		t.Fatal(err)
	}
	db := openCounts(t, dirA)
	defer db.Close()
	off, err := db.Offsets()
	if err != nil {
		t.Fatal(err)
	}
	if off.Changelog["counts"] != 6 {
		t.Errorf("reopened store at changelog offset %d, want 6", off.Changelog["counts"])
	}

	a = startTail(t, tl, addr, "app/1", db, 1)
	a.waitNext(t, 7)
	produce([2]string{"d", "1"})
	a.waitNext(t, 8)
	a.stop(t)
	b.stop(t)
	if got, want := contents(t, db), map[string]string{"a": "9", "c": "1", "d": "1"}; !maps.Equal(got, want) {
		t.Errorf("store tailed again holds %v, want %v", got, want)
	}
	if got, want := contents(t, b.db), map[string]string{"x": "2", "y": "1"}; !maps.Equal(got, want) {
		t.Errorf("other store holds %v, want %v", got, want)
	}
}
