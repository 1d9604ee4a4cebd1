package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/restore"
)

// standbyParts is the partition count of the standby tests' topics: two
// engines, each with one active task and the other's standby.
const standbyParts = 2

// roles returns the engine's RUNNING tasks by role.
func (r *running) roles() (active, standby []string) {
	for _, ti := range r.e.Metrics().Tasks {
		if ti.State != engine.Running {
			continue
		}
		if ti.Role == engine.RoleStandby {
			standby = append(standby, ti.Task)
		} else {
			active = append(active, ti.Task)
		}
	}
	return active, standby
}

// standbyInfo returns the engine's standby of task.
func (r *running) standbyInfo(task string) (engine.TaskInfo, bool) {
	for _, ti := range r.e.Metrics().Tasks {
		if ti.Task == task && ti.Role == engine.RoleStandby {
			return ti, true
		}
	}
	return engine.TaskInfo{}, false
}

// newStandbyCluster starts a broker with topics in and out of
// standbyParts partitions; its client writes to the partition set on each
// record.
func newStandbyCluster(t *testing.T) *cluster {
	return startCluster(t, standbyParts, true, "in", "out")
}

// waitStandbys waits until each of a and b runs one task and the other's
// standby, and returns their tasks.
func waitStandbys(t *testing.T, a, b *running) (activeA, activeB string) {
	t.Helper()
	waitFor(t, "each engine runs one task and the other's standby", func() bool {
		aa, as := a.roles()
		ba, bs := b.roles()
		if len(aa) != 1 || len(ba) != 1 || len(as) != 1 || len(bs) != 1 {
			return false
		}
		activeA, activeB = aa[0], ba[0]
		return activeA != activeB && as[0] == activeB && bs[0] == activeA
	})
	t.Logf("engine A runs %s, engine B runs %s", activeA, activeB)
	return activeA, activeB
}

// waitCaughtUp waits until the standby of each engine's task on the other
// engine has the task's changelog, of at least n records, up to its end.
func waitCaughtUp(t *testing.T, c *cluster, n int64, a, b *running, activeA, activeB string) {
	t.Helper()
	ends, err := c.adm.ListEndOffsets(t.Context(), soChangelog)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		e    *running
		task string
	}{{b, activeA}, {a, activeB}} {
		p, _ := strconv.Atoi(s.task[len(soApp)+1:])
		end, ok := ends.Lookup(soChangelog, int32(p))
		if !ok || end.Offset < n {
			t.Fatalf("changelog partition %d ends at %d, want at least %d", p, end.Offset, n)
		}
		waitFor(t, fmt.Sprintf("the standby of %s reaches the changelog end %d", s.task, end.Offset), func() bool {
			ti, ok := s.e.standbyInfo(s.task)
			return ok && ti.Changelog["seen"] == end.Offset && ti.Lag == 0
		})
	}
}

// TestStandbyFailover runs two engines with one standby replica over two
// partitions: each runs one task and keeps the other's standby, tailing its
// changelog. When one engine stops, the other takes its task over from its
// standby's store and replays only what the standby had not tailed (here
// nothing: the stop is clean and every record was committed before it),
// not the whole changelog; the counts go on from the standby's state.
func TestStandbyFailover(t *testing.T) {
	const n = 300 // records per partition, each with its own key
	c := newStandbyCluster(t)
	config := func() engine.Config {
		cfg := soConfig(t, c, t.TempDir(), "in")
		cfg.NumStandbyReplicas = 1
		return cfg
	}
	logsA, logsB := newRestoreLog(), newRestoreLog()
	a := startEngine(t, config(), engine.Listener{Restore: restore.Listener{Begin: logsA.begin, End: logsA.end}})
	b := startEngine(t, config(), engine.Listener{Restore: restore.Listener{Begin: logsB.begin, End: logsB.end}})

	activeA, activeB := waitStandbys(t, a, b)
	// B may have run A's task before A joined: its restores so far.
	restores := logsB.count(activeA)

	produceKeys(t, c, "k", n, "in")
	c.waitDone(t, soApp, "in")
	waitCaughtUp(t, c, n, a, b, activeA, activeB)
	// The standbys' catch-ups are not restores of the engine's tasks.
	if got := logsB.count(activeA); got != restores {
		t.Errorf("the standby of %s reported %d restores to the listener, want none", activeA, got-restores)
	}

	// A stops; B takes its task over from the standby's directory.
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "engine B runs both tasks, and no standby", func() bool {
		act, sb := b.roles()
		return len(act) == 2 && len(sb) == 0
	})
	waitFor(t, activeA+" restored on engine B", func() bool { return logsB.count(activeA) == restores+1 })
	const bound = 0 // A's clean stop committed nothing after the standby caught up
	end, _ := logsB.lastEnd(activeA)
	t.Logf("taking %s over, engine B replayed %d records of its changelog of %d", activeA, end.Restored, n)
	if end.Restored > bound || end.Err != nil {
		t.Errorf("taking %s over, engine B replayed %d records (err %v), want at most %d: the standby had the changelog up to its end",
			activeA, end.Restored, end.Err, bound)
	}

	// The same keys again: every count is 2, so the task taken over went on
	// from the state the standby copied.
	produceKeys(t, c, "k", n, "in")
	c.waitDone(t, soApp, "in")
	checkCounts(t, c.latest(t, "out"), standbyParts*n, "2")
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestStandbyFailoverCrash is TestStandbyFailover with a crash, under
// exactly-once: engine A dies like a killed process right after a
// transaction of new records commits in Kafka, before its RocksDB batches.
// Engine B takes A's task over from its standby, which tails the changelog
// read_committed: it replays at most the records of the transactions it had
// not tailed yet when the rebalance stopped it (those of the last batch of
// input), never the whole changelog, and every record is counted exactly
// once.
func TestStandbyFailoverCrash(t *testing.T) {
	const n, more = 300, 20 // records per partition before the crash, and in the crashing batch
	c := newStandbyCluster(t)
	config := func() engine.Config {
		cfg := soConfig(t, c, t.TempDir(), "in")
		cfg.NumStandbyReplicas = 1
		cfg.Guarantee = engine.ExactlyOnce
		return cfg
	}
	logsB := newRestoreLog()
	// A is started by hand: the crash hook is set before Run.
	ea, err := engine.New(config())
	if err != nil {
		t.Fatal(err)
	}
	var armed atomic.Bool
	engine.CrashWhen(ea, func(changes int) bool { return changes > 0 && armed.Load() })
	ctx, cancel := context.WithCancel(context.Background())
	a := &running{e: ea, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = ea.Run(ctx)
	}()
	t.Cleanup(func() { a.stop() })
	b := startEngine(t, config(), engine.Listener{Restore: restore.Listener{Begin: logsB.begin, End: logsB.end}})
	activeA, activeB := waitStandbys(t, a, b)
	restores := logsB.count(activeA) // B may have run A's task before A joined

	produceKeys(t, c, "k", n, "in")
	c.waitDone(t, soApp, "in")
	waitCaughtUp(t, c, n, a, b, activeA, activeB)

	armed.Store(true)
	produceKeys(t, c, "m", more, "in")
	if err := a.wait(); !errors.Is(err, engine.ErrCrashed) {
		t.Fatalf("engine A ended with %v, want the simulated crash", err)
	}
	waitFor(t, "engine B runs both tasks, and no standby", func() bool {
		act, sb := b.roles()
		return len(act) == 2 && len(sb) == 0
	})
	waitFor(t, activeA+" restored on engine B", func() bool { return logsB.count(activeA) == restores+1 })
	end, _ := logsB.lastEnd(activeA)
	t.Logf("taking %s over after the crash, engine B replayed %d records of its changelog of %d", activeA, end.Restored, n+more)
	if end.Restored > more || end.Err != nil {
		t.Errorf("taking %s over, engine B replayed %d records (err %v), want at most %d (the crashing batch)",
			activeA, end.Restored, end.Err, more)
	}

	c.waitDone(t, soApp, "in")
	checkCounts(t, c.latest(t, "out"), standbyParts*(n+more), "1")
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
}
