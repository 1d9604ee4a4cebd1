package assign

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

// The scale: 10,000 tasks with one standby each over 200 members on four
// racks.
const (
	scaleMembers = 200
	scaleRacks   = 4
)

// scaleGroup is 10,000 tasks of four pipelines (one a co-partitioned join
// of two topics, one stateless) with one standby each, over members on
// four racks, every changelog 1,000,000 records long. Its members have
// joined, and have no stores yet.
func scaleGroup(tb testing.TB, members int, parts int32) *cluster {
	c := newCluster(tb, Input{
		Pipelines: []Pipeline{
			{Name: "count", Inputs: []string{"clicks"}, Stores: []string{"seen"}, Changelogs: []string{"app-seen-changelog"}},
			{Name: "join", Inputs: []string{"orders", "payments"}, Stores: []string{"left", "right"}, Changelogs: []string{"app-left-changelog", "app-right-changelog"}},
			{Name: "enrich", Inputs: []string{"views"}},
			{Name: "agg", Inputs: []string{"events"}, Stores: []string{"sums"}, Changelogs: []string{"app-sums-changelog"}},
		},
		Partitions:    map[string]int32{"clicks": parts, "orders": parts, "payments": parts, "views": parts, "events": parts},
		Standbys:      1,
		MaxWarmups:    2,
		AcceptableLag: 10_000,
	})
	c.advance(1_000_000)
	for i := range members {
		c.add(fmt.Sprintf("p%03d", i), fmt.Sprintf("rack-%d", i%scaleRacks))
	}
	return c
}

// rollAll restarts every member in TestScale, not every tenth: about
// 1,000 rebalances of 10,000 tasks, some 100 s.
var rollAll = flag.Bool("roll-all", false, "TestScale: restart all 200 members, not every tenth")

// TestScale assigns 10,000 tasks over 200 members, then restarts members
// in turn (every tenth; all with -roll-all): each leaves (its tasks fail
// over), 5,000 records go by, and it joins again, as a new member, with
// its stores as it left them (closed at their last offsets; its standbys
// 50 records behind). Every rebalance, cooperative follow-ups and probing
// ones included, is checked against cluster.check (balance within one,
// sticky, standbys apart). A task whose member leaves must move (a forced
// move); the moves the balancer chose are counted: every task moves back
// once, and nothing else moves.
func TestScale(t *testing.T) {
	c := scaleGroup(t, scaleMembers, 2500)
	start := time.Now()
	in := c.input()
	plan := Assign(in)
	took := time.Since(start)
	t.Logf("first assignment of %d units over %d members: %v", len(plan.Units), len(plan.Members), took)
	// A generous bound, for -race and a loaded machine; BenchmarkAssign
	// has the real figure.
	if took > 5*time.Second {
		t.Errorf("the first assignment took %v", took)
	}
	c.check(in, plan)
	c.apply(plan)
	c.rebalance()

	c.moves, c.forced = map[Task]int{}, map[Task]int{}
	rounds := c.rounds
	start = time.Now()
	visits, restarts := 0, 0
	for i, p := range c.procs {
		if i%10 != 0 && !*rollAll {
			continue
		}
		restarts++
		c.markStart()
		c.stop(p.name)
		c.rebalance()
		c.advance(5_000)
		c.start(p)
		c.rebalance()
		k, v := c.mostVisits()
		visits = max(visits, v)
		if v > 2 {
			t.Errorf("restarting %s moved %s through %d other processes", p.name, k, v)
		}
	}
	moved, forced := 0, 0
	for _, n := range c.moves {
		moved += n
	}
	for _, n := range c.forced {
		forced += n
	}
	k, most := c.maxMoves(true)
	k2, most2 := c.maxMoves(false)
	t.Logf("%d restarts: %d rebalances in %v; %d moves chosen, %d forced; most for a task with stores %d (%s), without %d (%s); most processes visited in one restart %d",
		restarts, c.rounds-rounds, time.Since(start), moved, forced, most, k, most2, k2, visits)
	// Over the roll no task moves by choice more than once: back to its
	// process when that process returns. Tasks with stores fail over to
	// their standbys, which are on as many processes as the leaving one
	// had tasks with stores (no warm-up, which would move a task once more
	// when it catches up); tasks without stores go back as the last ones
	// the processes that took them took (Member.Acquired).
	if most > 1 {
		t.Errorf("task %s (with stores) moved %d times by choice", k, most)
	}
	if most2 > 1 {
		t.Errorf("task %s (without stores) moved %d times by choice", k2, most2)
	}
	if moved != forced {
		t.Errorf("%d moves chosen, want %d: each task that failed over back once", moved, forced)
	}
}

// BenchmarkAssign times one assignment of 10,000 tasks over 200 members
// with standbys and racks: of a new group (no stores anywhere), of a
// settled one (every task where it was, copies caught up), and of one a
// member has just rejoined.
func BenchmarkAssign(b *testing.B) {
	fresh := scaleGroup(b, scaleMembers, 2500)
	freshIn := fresh.input()
	settled := scaleGroup(b, scaleMembers, 2500)
	settled.apply(Assign(settled.input()))
	settled.rebalance()
	settledIn := settled.input()
	p := settled.procs[0]
	settled.stop(p.name)
	settled.rebalance()
	settled.advance(5_000)
	settled.start(p)
	rejoinIn := settled.input()
	for _, bc := range []struct {
		name string
		in   Input
	}{
		{"new", freshIn},
		{"settled", settledIn},
		{"rejoin", rejoinIn},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Assign(bc.in)
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/assign")
		})
	}
}
