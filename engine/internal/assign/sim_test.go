package assign

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestConvergence perturbs small groups at random, as Kafka Streams'
// TaskAssignorConvergenceTest does: processes join, leave, restart with
// their disks, and records go by; after every event the group rebalances
// until it is stable, and cluster.check asserts the invariants of every
// plan on the way (one member per partition and per unit, balance within
// one, at most MaxWarmups warm-ups, sticky, standbys off the active's
// member and spread over racks). A group must settle within 50
// rebalances (warm-ups' probing included), and once settled it stays: a
// rebalance with nothing changed moves nothing.
func TestConvergence(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			c := newCluster(t, Input{
				Pipelines: []Pipeline{
					{Name: "count", Inputs: []string{"clicks"}, Stores: []string{"seen"}, Changelogs: []string{"app-seen-changelog"}},
					{Name: "join", Inputs: []string{"orders", "payments"}, Stores: []string{"left", "right"}, Changelogs: []string{"app-left-changelog", "app-right-changelog"}},
					{Name: "enrich", Inputs: []string{"views"}},
				},
				Partitions:    map[string]int32{"clicks": int32(1 + r.IntN(12)), "orders": int32(1 + r.IntN(12)), "payments": int32(1 + r.IntN(12)), "views": int32(1 + r.IntN(6))},
				Standbys:      r.IntN(3),
				MaxWarmups:    r.IntN(4),
				AcceptableLag: 2*standbyTail + int64(r.IntN(3))*500, // a standby of join, trailing by standbyTail on both stores, is caught up
			})
			c.advance(int64(r.IntN(10_000)))
			racks := 1 + r.IntN(3)
			next := 0
			add := func() {
				c.add(fmt.Sprintf("p%02d", next), fmt.Sprintf("rack-%d", next%racks))
				next++
			}
			for range 1 + r.IntN(4) {
				add()
			}
			c.rebalance()
			for step := range 100 {
				var up, down []*proc
				for _, p := range c.procs {
					if p.up {
						up = append(up, p)
					} else {
						down = append(down, p)
					}
				}
				switch e := r.IntN(10); {
				case e < 2 && len(up) < 8:
					add()
				case e < 4 && len(up) > 1:
					c.stop(up[r.IntN(len(up))].name)
				case e < 6 && len(down) > 0:
					c.start(down[r.IntN(len(down))])
				default:
					c.advance(int64(r.IntN(2_000)))
				}
				c.rebalance()
				// Settled: once more, nothing moves.
				before := c.assignment()
				c.rebalance()
				if after := c.assignment(); after != before {
					t.Fatalf("step %d: a rebalance with nothing changed moved tasks:\n%s\nto\n%s", step, before, after)
				}
			}
		})
	}
}
