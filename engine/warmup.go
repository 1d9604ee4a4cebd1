package engine

import (
	"context"
	"time"
)

// Warm-up replicas (KIP-441). When a balanced assignment would move a task
// from a process whose copy of its stores is caught up (within
// Config.AcceptableRecoveryLag) to one whose copy is not, the leader keeps
// the task where it is and gives the other process a warm-up copy: a
// standby task that tails the changelogs (standby.go). While warm-ups are
// under way the leader asks for a probing rebalance every
// Config.ProbingRebalanceInterval; every member then reports its stores'
// offsets again, and a task whose warm-up has caught up moves, restoring
// almost nothing. Nothing stops processing while a new process fills its
// stores.

// probe asks for a rebalance every ProbingRebalanceInterval while the last
// assignment this process made as leader had warm-ups, until ctx ends.
func (e *Engine) probe(ctx context.Context) error {
	tick := time.NewTicker(e.cfg.ProbingRebalanceInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if n := e.warmups.Load(); n > 0 {
			e.log.Info("probing rebalance: warm-ups under way", "warmups", n)
			e.cl.ForceRebalance()
		}
	}
}
