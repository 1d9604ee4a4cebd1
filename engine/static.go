package engine

import (
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowstate/flowstate/engine/internal/layout"
)

// Static membership (KIP-345). A process with an instance id that stops
// cleanly stays in the group (the client sends no LeaveGroup), so that a
// restart within the session timeout takes its place back: the
// coordinator hands it its last assignment, standbys included, without a
// rebalance, and its stores, closed with their offsets, restore nothing.
//
// A coordinator skips that rebalance only when the rejoin does not change
// what the member subscribed with; kfake compares the subscription bytes.
// Ours change with every commit (the store offsets in the user data) and
// a fresh client owns no partitions, so on a clean stop the engine writes
// the subscription of its last join to the state directory
// (layout.SavedSubscription), and the first join after the restart
// repeats it when the topics and the rack are unchanged. The repeated
// offsets are older than the stores', so a leader reading them can only
// think the member further behind than it is. Should the rejoin meet a rebalance anyway
// (the group was rebalancing, or the member had left), its stale claims of
// owned partitions could hold partitions back, so the member at once joins
// again with its current subscription.

// joinMemory remembers the subscription of every join, and repeats a saved
// one on the first join after a clean restart.
type joinMemory struct {
	e      *Engine
	mu     sync.Mutex
	last   map[string][]byte         // protocol -> metadata of the last join
	replay *layout.SavedSubscription // until the first assignment after a restart
	used   bool                      // the replay went into a join
	// pending is a replay whose assignment came before Run had stored
	// the client (kgo joins as soon as it is made); clientReady checks it.
	pending *layout.SavedSubscription
}

// remember wraps b so that its subscriptions pass through m.
func (m *joinMemory) remember(b kgo.GroupBalancer) kgo.GroupBalancer {
	return &rememberingBalancer{GroupBalancer: b, m: m}
}

type rememberingBalancer struct {
	kgo.GroupBalancer
	m *joinMemory
}

func (r *rememberingBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	return r.m.metadata(r.ProtocolName(), r.GroupBalancer.JoinGroupMetadata(interests, current, generation))
}

func (r *rememberingBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	r.m.synced()
	return r.GroupBalancer.ParseSyncAssignment(assignment)
}

// metadata returns what to subscribe with for protocol: the saved
// subscription while one is to be repeated and fits, else fresh.
func (m *joinMemory) metadata(protocol string, fresh []byte) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := fresh
	if m.replay != nil {
		if old, ok := m.replay.Protocols[protocol]; ok && sameSubscription(old, fresh) {
			out = old
			m.used = true
		}
	}
	if m.last == nil {
		m.last = map[string][]byte{}
	}
	m.last[protocol] = out
	return out
}

// sameSubscription reports whether two consumer subscriptions name the
// same topics and rack, whatever their owned partitions and user data.
func sameSubscription(a, b []byte) bool {
	var ma, mb kmsg.ConsumerMemberMetadata
	if ma.ReadFrom(a) != nil || mb.ReadFrom(b) != nil {
		return false
	}
	ra, rb := "", ""
	if ma.Rack != nil {
		ra = *ma.Rack
	}
	if mb.Rack != nil {
		rb = *mb.Rack
	}
	return slices.Equal(ma.Topics, mb.Topics) && ra == rb
}

// synced runs as an assignment arrives: a repeated subscription has done
// its work, or, when the join it went into was a rebalance after all, is
// replaced at once by a fresh one.
func (m *joinMemory) synced() {
	m.mu.Lock()
	replay, used := m.replay, m.used
	m.replay, m.used = nil, false
	cl := m.e.client.Load()
	if replay != nil && used && cl == nil {
		m.pending = replay
	}
	m.mu.Unlock()
	if replay == nil || !used || cl == nil {
		return
	}
	m.check(cl, replay)
}

// clientReady runs once Run has stored the client: it checks a replay
// whose assignment came before.
func (m *joinMemory) clientReady(cl *kgo.Client) {
	m.mu.Lock()
	replay := m.pending
	m.pending = nil
	m.mu.Unlock()
	if replay != nil {
		m.check(cl, replay)
	}
}

// check logs whether the rejoin of replay went without a rebalance, and
// if it did not, rejoins with the current subscription.
func (m *joinMemory) check(cl *kgo.Client, replay *layout.SavedSubscription) {
	_, gen := cl.GroupMetadata()
	if gen == replay.Generation {
		m.e.log.Info("static member rejoined without a rebalance", "instance_id", replay.InstanceID, "generation", gen)
		return
	}
	m.e.log.Info("static member rejoined in a rebalance; joining again with its current subscription",
		"instance_id", replay.InstanceID, "generation", gen, "stopped_in", replay.Generation)
	go cl.ForceRebalance() // not from the group's goroutine, which may run this
}

// takeStaticJoin reads and removes the saved subscription, if this
// process is a static member that stopped cleanly.
func (e *Engine) takeStaticJoin() {
	j, err := e.layout().TakeSubscription()
	if err != nil {
		e.log.Warn("static membership: saved subscription unusable; joining with a fresh one", "err", err)
		return
	}
	if j == nil || e.cfg.InstanceID == "" || j.InstanceID != e.cfg.InstanceID {
		return // another identity's, or none now: a fresh join
	}
	e.joins.mu.Lock()
	e.joins.replay = j
	e.joins.mu.Unlock()
}

// saveStaticJoin writes the last join's subscription after a clean stop
// of a static member, for its restart. gen is the generation it was in.
func (e *Engine) saveStaticJoin(gen int32) error {
	if e.cfg.InstanceID == "" || gen < 0 {
		return nil
	}
	e.joins.mu.Lock()
	j := layout.SavedSubscription{InstanceID: e.cfg.InstanceID, Generation: gen, Protocols: e.joins.last}
	e.joins.mu.Unlock()
	if len(j.Protocols) == 0 {
		return nil
	}
	if err := e.layout().SaveSubscription(j); err != nil {
		return fmt.Errorf("static membership: %w", err)
	}
	return nil
}
