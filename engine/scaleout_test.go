package engine_test

import (
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/restore"
)

// The tests of this file run several engines of application "so" in this
// process, against one broker whose topics have 4 partitions and that
// allows short session timeouts. The pipeline is the poison test guest: it
// counts records per key in store "seen" and emits each count to "out".
const (
	soApp       = "so"
	soChangelog = "so-seen-changelog"
	soParts     = 4
)

// newScaleCluster starts a broker with topics, soParts partitions each; its
// client writes to the partition set on each record.
func newScaleCluster(t *testing.T, topics ...string) *cluster {
	return startCluster(t, soParts, true, topics...)
}

// checkCounts checks that counts holds keys keys, each counted want.
func checkCounts(t *testing.T, counts map[string]string, keys int, want string) {
	t.Helper()
	if len(counts) != keys {
		t.Errorf("%d keys counted, want %d", len(counts), keys)
	}
	var wrong []string
	for k, v := range counts {
		if v != want {
			wrong = append(wrong, k+"="+v)
		}
	}
	slices.Sort(wrong)
	if len(wrong) > 0 {
		t.Errorf("%d keys not counted %s: %v", len(wrong), want, wrong[:min(len(wrong), 10)])
	}
}

// soConfig is the config of one engine of the application, its state in
// dir.
func soConfig(t *testing.T, c *cluster, dir string, inputs ...string) engine.Config {
	return engine.Config{
		ApplicationID:  soApp,
		Brokers:        []string{c.addr},
		StateDir:       dir,
		CommitInterval: 50 * time.Millisecond,
		SessionTimeout: 1500 * time.Millisecond,
		Logger:         testLogger(t),
		Pipelines: []engine.Pipeline{{
			Name:    soApp,
			Module:  plugintest.Build(t, "engine/testdata/poison"),
			Inputs:  inputs,
			Outputs: []string{"out"},
			Stores:  []string{"seen"},
		}},
	}
}

// produceKeys writes n records with distinct keys <prefix><p>-<i> to every
// partition p of each topic (c's partition count).
func produceKeys(t *testing.T, c *cluster, prefix string, n int, topics ...string) {
	t.Helper()
	var recs []*kgo.Record
	for _, topic := range topics {
		for p := range c.parts {
			for i := range n {
				key := prefix + strconv.Itoa(int(p)) + "-" + strconv.Itoa(i)
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(key), Value: []byte("v")})
			}
		}
	}
	if err := c.cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// tasks returns the engine's tasks, and those of them RUNNING.
func (r *running) tasks() (all, run []string) {
	for _, ti := range r.e.Metrics().Tasks {
		all = append(all, ti.Task)
		if ti.State == engine.Running {
			run = append(run, ti.Task)
		}
	}
	return all, run
}

// waitSplit waits until every engine runs n tasks and nothing else, no
// task on two engines, and returns each engine's tasks.
func waitSplit(t *testing.T, what string, n int, es ...*running) [][]string {
	t.Helper()
	var got [][]string
	var last []string
	defer func() {
		if t.Failed() {
			t.Logf("last seen, per engine (all tasks | running): %v", last)
		}
	}()
	waitFor(t, what, func() bool {
		got = got[:0]
		last = last[:0]
		for _, e := range es {
			all, run := e.tasks()
			last = append(last, fmt.Sprint(all, " | ", run))
		}
		seen := map[string]bool{}
		for _, e := range es {
			all, run := e.tasks()
			if len(all) != n || len(run) != n {
				return false
			}
			for _, task := range run {
				if seen[task] {
					return false
				}
				seen[task] = true
			}
			got = append(got, run)
		}
		return true
	})
	return got
}

// TestScaleOutCoPartitioned runs a pipeline with two co-partitioned inputs
// on two engines: partition p of both inputs goes to the same engine, so
// every key, written once to each input, counts to 2.
func TestScaleOutCoPartitioned(t *testing.T) {
	c := newScaleCluster(t, "left", "right", "out")
	a := startEngine(t, soConfig(t, c, t.TempDir(), "left", "right"), engine.Listener{})
	b := startEngine(t, soConfig(t, c, t.TempDir(), "left", "right"), engine.Listener{})
	split := waitSplit(t, "each engine runs two tasks", 2, a, b)
	t.Logf("engine tasks: %v", split)

	// The group's own view: each member has the same partitions of both
	// inputs.
	groups, err := c.adm.DescribeGroups(t.Context(), soApp)
	if err != nil {
		t.Fatal(err)
	}
	g := groups[soApp]
	if g.Protocol != "flowstate-v1" {
		t.Errorf("group protocol %q, want flowstate-v1", g.Protocol)
	}
	if len(g.Members) != 2 {
		t.Fatalf("group has %d members, want 2", len(g.Members))
	}
	for _, m := range g.Members {
		as, ok := m.Assigned.AsConsumer()
		if !ok {
			t.Fatalf("member %s: assignment is not a consumer assignment", m.MemberID)
		}
		parts := map[string][]int32{}
		for _, at := range as.Topics {
			parts[at.Topic] = slices.Sorted(slices.Values(at.Partitions))
		}
		if !slices.Equal(parts["left"], parts["right"]) || len(parts["left"]) != 2 {
			t.Errorf("member %s is assigned %v: want the same two partitions of left and right", m.MemberID, parts)
		}
	}

	produceKeys(t, c, "k", 20, "left", "right")
	c.waitDone(t, soApp, "left", "right")
	// Each key counts its records of both inputs, in one task.
	checkCounts(t, c.latest(t, "out"), soParts*20, "2")
	for _, e := range []*running{a, b} {
		if err := e.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScaleOutStickyLagAware moves tasks between two engines: a second
// engine takes half of the first one's tasks and, when it stops, the first
// takes them back restoring only what changed meanwhile. When the second
// comes back with its state directories it gets exactly the tasks it had
// (its copies are the most caught up) and restores only the records
// written since it left.
func TestScaleOutStickyLagAware(t *testing.T) {
	const initial, whileB, whileAway = 100, 10, 7
	c := newScaleCluster(t, "in", "out")
	produceKeys(t, c, "a", initial, "in")

	logsA := newRestoreLog()
	a := startEngine(t, soConfig(t, c, t.TempDir(), "in"), engine.Listener{Restore: restore.Listener{Begin: logsA.begin, End: logsA.end}})
	waitSplit(t, "the first engine runs every task", soParts, a)
	c.waitDone(t, soApp, "in")

	dirB := t.TempDir()
	logsB := newRestoreLog()
	b := startEngine(t, soConfig(t, c, dirB, "in"), engine.Listener{Restore: restore.Listener{Begin: logsB.begin, End: logsB.end}})
	split := waitSplit(t, "each engine runs half of the tasks", soParts/2, a, b)
	tasksB := split[1]
	for _, task := range tasksB {
		if end, _ := logsB.lastEnd(task); end.Restored != initial {
			t.Errorf("the new engine restored %d records of %s, want %d (its whole changelog)", end.Restored, task, initial)
		}
	}

	// The second engine processes a little, then stops: the first one
	// takes its tasks back and restores only those records.
	produceKeys(t, c, "b", whileB, "in")
	c.waitDone(t, soApp, "in")
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	waitSplit(t, "the first engine runs every task again", soParts, a)
	for _, task := range tasksB {
		waitFor(t, task+" restored on the first engine", func() bool { return logsA.count(task) == 2 })
		if end, _ := logsA.lastEnd(task); end.Restored != whileB {
			t.Errorf("taking %s back, the first engine restored %d records, want %d", task, end.Restored, whileB)
		}
	}

	// More records while the second engine is away, then it comes back.
	produceKeys(t, c, "c", whileAway, "in")
	c.waitDone(t, soApp, "in")
	logsB2 := newRestoreLog()
	b = startEngine(t, soConfig(t, c, dirB, "in"), engine.Listener{Restore: restore.Listener{Begin: logsB2.begin, End: logsB2.end}})
	split = waitSplit(t, "each engine runs half of the tasks again", soParts/2, a, b)
	if !slices.Equal(split[1], tasksB) {
		t.Errorf("back, the second engine runs %v, want %v (the tasks it has stores of)", split[1], tasksB)
	}
	for _, task := range split[1] {
		begin, _ := logsB2.lastBegin(task)
		end, _ := logsB2.lastEnd(task)
		if end.Restored != whileAway || begin.Start[soChangelog] != initial+whileB {
			t.Errorf("back, the second engine restored %d records of %s from offset %d, want %d from %d",
				end.Restored, task, begin.Start[soChangelog], whileAway, initial+whileB)
		}
	}
	if m := b.e.Metrics(); m.Restore.Records != soParts/2*whileAway {
		t.Errorf("restore metrics count %d records, want %d", m.Restore.Records, soParts/2*whileAway)
	}

	// Both go on processing, and no record was processed twice on the way.
	produceKeys(t, c, "d", 1, "in")
	c.waitDone(t, soApp, "in")
	checkCounts(t, c.latest(t, "out"), soParts*(initial+whileB+whileAway+1), "1")
	for _, e := range []*running{a, b} {
		if err := e.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScaleOutStaticRestart stops a static member cleanly and restarts it
// within the session timeout: it gets its tasks back and restores nothing,
// and the other member's tasks never stop.
func TestScaleOutStaticRestart(t *testing.T) {
	c := newScaleCluster(t, "in", "out")
	produceKeys(t, c, "a", 50, "in")
	static := func(id, dir string) engine.Config {
		cfg := soConfig(t, c, dir, "in")
		cfg.InstanceID = id
		cfg.SessionTimeout = 10 * time.Second // longer than a restart
		return cfg
	}
	var changesA atomic.Int64
	a := startEngine(t, static("a", t.TempDir()), engine.Listener{TaskState: func(string, engine.TaskState) { changesA.Add(1) }})
	dirB := t.TempDir()
	b := startEngine(t, static("b", dirB), engine.Listener{})
	split := waitSplit(t, "each engine runs half of the tasks", soParts/2, a, b)
	c.waitDone(t, soApp, "in")
	before := changesA.Load()
	gen := a.e.Metrics().Generation

	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	logs := newRestoreLog()
	b = startEngine(t, static("b", dirB), engine.Listener{Restore: restore.Listener{Begin: logs.begin, End: logs.end}})
	again := waitSplit(t, "the restarted engine runs its tasks", soParts/2, a, b)
	if !slices.Equal(again[1], split[1]) {
		t.Errorf("restarted, the static member runs %v, want %v", again[1], split[1])
	}
	if !slices.Equal(again[0], split[0]) {
		t.Errorf("the other member runs %v, want %v", again[0], split[0])
	}
	if ga, gb := a.e.Metrics().Generation, b.e.Metrics().Generation; ga != gen || gb != gen {
		t.Errorf("generation %d before the restart, %d and %d after, want no rebalance", gen, ga, gb)
	}
	for _, task := range again[1] {
		if end, ok := logs.lastEnd(task); !ok || end.Restored != 0 {
			t.Errorf("restarted, the static member restored %d records of %s, want 0", end.Restored, task)
		}
	}
	produceKeys(t, c, "b", 1, "in")
	c.waitDone(t, soApp, "in")
	if n := changesA.Load(); n != before {
		t.Errorf("the other member's tasks changed state %d times during the restart, want none", n-before)
	}
	counts := c.latest(t, "out")
	for p := range soParts {
		for _, k := range []string{fmt.Sprintf("a%d-0", p), fmt.Sprintf("b%d-0", p)} {
			if counts[k] != "1" {
				t.Errorf("key %s counted %q, want 1", k, counts[k])
			}
		}
	}
	for _, e := range []*running{a, b} {
		if err := e.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScaleOutWarmup: a second engine joins one whose stores are caught
// up. With warm-ups, the tasks it is to take first stay on the first
// engine while the second fills warm-up copies; probing rebalances move
// them once the copies are within the acceptable lag, so the second
// engine's restore of each replays almost nothing, where without warm-ups
// it replays the whole changelog (TestScaleOutStickyLagAware).
func TestScaleOutWarmup(t *testing.T) {
	const initial = 100
	c := newScaleCluster(t, "in", "out")
	produceKeys(t, c, "a", initial, "in")
	config := func(dir string) engine.Config {
		cfg := soConfig(t, c, dir, "in")
		cfg.MaxWarmupReplicas = new(soParts)
		cfg.AcceptableRecoveryLag = new(int64(5))
		cfg.ProbingRebalanceInterval = 300 * time.Millisecond
		return cfg
	}
	a := startEngine(t, config(t.TempDir()), engine.Listener{})
	waitSplit(t, "the first engine runs every task", soParts, a)
	c.waitDone(t, soApp, "in")

	logsB := newRestoreLog()
	b := startEngine(t, config(t.TempDir()), engine.Listener{Restore: restore.Listener{Begin: logsB.begin, End: logsB.end}})
	split := waitSplit(t, "each engine runs half of the tasks", soParts/2, a, b)
	for _, task := range split[1] {
		end, _ := logsB.lastEnd(task)
		if end.Restored > 5 {
			t.Errorf("the new engine restored %d records of %s as its active, want at most the acceptable lag 5 (its warm-up copy filled the store first)", end.Restored, task)
		}
		t.Logf("%s: restored %d records on taking over", task, end.Restored)
	}
	produceKeys(t, c, "b", 10, "in")
	c.waitDone(t, soApp, "in")
	if got := len(c.latest(t, "out")); got != soParts*(initial+10) {
		t.Errorf("%d keys counted, want %d", got, soParts*(initial+10))
	}
	for _, e := range []*running{a, b} {
		if err := e.stop(); err != nil {
			t.Fatal(err)
		}
	}
}
