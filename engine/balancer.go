package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowstate/flowstate/engine/internal/assign"
)

// Task assignment. The processes of one application share its input
// partitions through Kafka's classic group protocol, with this balancer
// (protocol "flowstate-v1"). Every member sends, in the user data of its
// subscription, the changelog offsets of every task store it has on disk:
// the open tasks' offsets as of their last commit (from memory), and the
// closed ones' from the file their task wrote when it closed (janitor.go),
// so that a join opens no RocksDB, and the generation it was first
// assigned each owned partition in (a member above its share gives up
// what it took last first). The leader lists the changelogs' end
// offsets and hands everything to assign.Assign, which decides the
// actives, standbys and warm-ups (engine/internal/assign says how). The
// assignment is cooperative: a unit moving between members is first
// revoked by its owner and assigned in the rebalance that follows
// (kgo.BalancePlan.AdjustCooperative), so tasks that stay are never
// stopped. Each member's standby tasks go in the user data of its
// SyncGroup assignment (withStandbys; standby.go runs them).
//
// This file is the adapter between kgo and assign: the wire formats of the
// user data are assign's; the consumer protocol around them, the Kafka
// I/O and the logging are here.

// balancerProtocol names the group protocol of groupBalancer. A new
// assignment algorithm that old members could not follow gets a new name.
const balancerProtocol = "flowstate-v1"

// endOffsetsTimeout bounds the leader's listing of changelog end offsets:
// balancing happens while the whole group waits.
const endOffsetsTimeout = 2 * time.Second

// storeState is what a member reports about one task directory.
type storeState struct {
	task taskKey
	open bool
	// changelog maps a store name to its next changelog offset; stores
	// never committed are missing.
	changelog map[string]int64
}

// standbyTask is one standby task of this member's assignment.
type standbyTask struct {
	taskKey
	warmup bool
}

func (k taskKey) task() assign.Task { return assign.Task{Pipeline: k.pipeline, Partition: k.partition} }

func keyOf(t assign.Task) taskKey { return taskKey{t.Pipeline, t.Partition} }

// subscriptionStates is states as the subscription's user data carries them.
func subscriptionStates(states []storeState) []assign.StoreState {
	out := make([]assign.StoreState, len(states))
	for i, s := range states {
		out[i] = assign.StoreState{Task: s.task.task(), Open: s.open, Changelog: s.changelog}
	}
	return out
}

// storeStates lists the task directories of this process: the open tasks
// with their offsets as of their last commit, and the closed directories
// still kept with the offsets their task wrote when it closed. A directory
// without that file (left by a crash before recoverClosedOffsets ran, or
// being deleted) is left out.
func (e *Engine) storeStates() []storeState {
	var states []storeState
	open := map[taskKey]bool{}
	e.track.mu.Lock()
	live := make([]*replica, 0, len(e.track.live))
	for t := range e.track.live {
		live = append(live, t.base())
	}
	e.track.mu.Unlock()
	for _, t := range live {
		if open[t.key] {
			continue
		}
		open[t.key] = true
		states = append(states, storeState{task: t.key, open: true, changelog: t.changelogOffsets()})
	}
	tasks, _ := e.layout().ScanTasks()
	for _, td := range tasks {
		key := taskKey{td.Pipeline, td.Partition}
		if open[key] {
			continue
		}
		off, ok := td.ClosedOffsets()
		if !ok {
			continue
		}
		states = append(states, storeState{task: key, changelog: off})
	}
	return states
}

// groupBalancer is flowstate's kgo.GroupBalancer.
type groupBalancer struct {
	e   *Engine
	adm *kadm.Client // lists changelog end offsets when this member leads
	// stop, closed when the engine stops (Run's ctx.Done), cancels a
	// listing under way.
	stop <-chan struct{}

	mu sync.Mutex
	// acquired is, per partition this member owns, the generation it
	// was first assigned in: the generation of the join that first
	// listed it as owned (assign.Member.Acquired).
	acquired map[assign.TopicPartition]int32
}

// acquisitions records the owned partitions of a join, current of
// generation, and returns when each was first assigned.
func (b *groupBalancer) acquisitions(current map[string][]int32, generation int32) map[assign.TopicPartition]int32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := make(map[assign.TopicPartition]int32, len(b.acquired))
	for topic, ps := range current {
		for _, p := range ps {
			tp := assign.TopicPartition{Topic: topic, Partition: p}
			gen, ok := b.acquired[tp]
			if !ok {
				gen = generation
			}
			next[tp] = gen
		}
	}
	b.acquired = next // replaced, never changed, by the next join
	return next
}

var _ kgo.GroupBalancer = (*groupBalancer)(nil)

func (*groupBalancer) ProtocolName() string { return balancerProtocol }

// IsCooperative is true: members revoke only the partitions that move.
func (*groupBalancer) IsCooperative() bool { return true }

// JoinGroupMetadata is the consumer protocol's subscription, as the
// cooperative sticky balancer writes it (the owned partitions and the
// generation they were assigned in), with the member's store states as
// user data.
func (b *groupBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	// Warm-ups are the leader's to follow up: a join forgets those of an
	// earlier generation, and Balance counts them again if this process
	// leads the next (warmup.go). Otherwise a process that led once would
	// go on probing after another took over.
	b.e.warmups.Store(0)
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	for topic, parts := range current {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = topic
		owned.Partitions = parts
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	slices.SortFunc(meta.OwnedPartitions, func(a, b kmsg.ConsumerMemberMetadataOwnedPartition) int {
		return cmp.Compare(a.Topic, b.Topic)
	})
	if rack := b.e.cfg.Rack; rack != "" {
		meta.Rack = &rack // v3, for rack-aware standbys
	}
	meta.UserData = assign.EncodeSubscription(assign.Subscription{
		Stores:   subscriptionStates(b.e.storeStates()),
		Acquired: b.acquisitions(current, generation),
	})
	return meta.AppendTo(nil)
}

// ParseSyncAssignment reads this member's assignment: the partitions, and
// in the user data the standby tasks, which the engine starts and stops
// (standby.go). It is the only place a member sees its raw assignment.
func (b *groupBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("%s: sync assignment: %w", balancerProtocol, err)
	}
	standbys, err := assign.DecodeStandbys(a.UserData)
	if err != nil {
		// The partitions are still ours to run; a standby is an
		// optimization, so an unreadable list runs none.
		b.e.log.Warn("assignment: standby tasks unreadable; running none", "err", err)
	}
	ks := make([]standbyTask, len(standbys))
	for i, s := range standbys {
		ks[i] = standbyTask{keyOf(s.Task), s.Warmup}
	}
	b.e.setStandbys(ks)
	m := make(map[string][]int32, len(a.Topics))
	for _, t := range a.Topics {
		m[t.Topic] = t.Partitions
	}
	return m, nil
}

func (b *groupBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", balancerProtocol, err)
	}
	return cb, cb.MemberTopics(), nil
}

// Balance runs on the leader: it reads every member's subscription, lists
// the changelog end offsets, assigns, and holds back what must first be
// revoked elsewhere.
func (b *groupBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	log := b.e.log
	in := assign.Input{Partitions: topics, Pipelines: b.e.shapes()}
	byID := map[string]*kmsg.JoinGroupResponseMember{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		byID[m.MemberID] = m
		am := assign.Member{
			ID:         m.MemberID,
			Topics:     meta.Topics,
			Generation: meta.Generation,
			Owned:      map[string][]int32{},
			Stores:     map[assign.Task]map[string]int64{},
		}
		if m.InstanceID != nil {
			am.Instance = *m.InstanceID
		}
		if meta.Rack != nil {
			am.Rack = *meta.Rack
		}
		for _, o := range meta.OwnedPartitions {
			am.Owned[o.Topic] = append(am.Owned[o.Topic], o.Partitions...)
		}
		sub, err := assign.DecodeSubscription(meta.UserData)
		if err != nil {
			log.Warn("assignment: member's store states unreadable; balancing as if it had none", "member", m.MemberID, "err", err)
		}
		states := sub.Stores
		am.Acquired = sub.Acquired
		open := 0
		for _, s := range states {
			am.Stores[s.Task] = s.Changelog
			if s.Open {
				open++
			}
		}
		log.Debug("assignment: member", "member", m.MemberID, "topics", meta.Topics, "generation", meta.Generation,
			"stores_open", open, "stores_closed", len(states)-open)
		in.Members = append(in.Members, am)
	})
	in.Ends = b.endOffsets(in.Pipelines, topics)
	in.Standbys = b.e.cfg.NumStandbyReplicas
	in.MaxWarmups, in.AcceptableLag = b.e.cfg.maxWarmups(), b.e.cfg.acceptableLag()

	plan := assign.Assign(in)
	// Warm-ups ask for probing rebalances until they have caught up and
	// their tasks moved (warmup.go).
	b.e.warmups.Store(int32(plan.Warmups))
	bp := cb.NewPlan()
	for id, parts := range plan.Members {
		for topic, ps := range parts {
			bp.AddPartitions(byID[id], topic, ps)
		}
	}
	bp.AdjustCooperative(cb)
	b.logPlan(cb.Info().Generation, in.Members, plan, bp.AsMemberIDMap())
	if len(plan.Standbys) == 0 {
		return bp // kgo logs a *kgo.BalancePlan it is given
	}
	return withStandbys{bp, plan.Standbys}
}

// withStandbys is the leader's assignment: the partitions of the balance
// plan, and each member's standby tasks in its assignment's user data.
type withStandbys struct {
	bp       *kgo.BalancePlan
	standbys map[string][]assign.Standby // member -> tasks
}

func (w withStandbys) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	out := w.bp.IntoSyncAssignment()
	for i := range out {
		ks := w.standbys[out[i].MemberID]
		if len(ks) == 0 {
			continue
		}
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(out[i].MemberAssignment); err != nil {
			continue // kgo has just written it; left as it is, the member runs no standbys
		}
		a.UserData = assign.EncodeStandbys(ks)
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return out
}

// shapes describes the engine's pipelines for assign.Assign.
func (e *Engine) shapes() []assign.Pipeline {
	out := make([]assign.Pipeline, len(e.pipelines))
	for i, p := range e.pipelines {
		out[i] = assign.Pipeline{Name: p.cfg.Name, Inputs: p.cfg.Inputs, Stores: p.cfg.Stores, Changelogs: p.changelogs}
	}
	return out
}

// endOffsets lists the end offsets of the changelog partitions of every
// task to assign. On a failure (or a timeout, or the engine stopping) the
// partitions not listed are missing, and assign compares the members'
// offsets as they are.
func (b *groupBalancer) endOffsets(shapes []assign.Pipeline, topics map[string]int32) map[assign.TopicPartition]int64 {
	var changelogs []string
	for _, s := range shapes {
		changelogs = append(changelogs, s.Changelogs...)
	}
	if len(changelogs) == 0 || len(topics) == 0 || b.adm == nil {
		return nil
	}
	// kgo gives Balance no context: the listing has its own, ended by the
	// timeout or by the engine stopping.
	ctx, cancel := context.WithTimeout(context.Background(), endOffsetsTimeout)
	stopped := make(chan struct{})
	defer func() { cancel(); <-stopped }()
	go func() {
		defer close(stopped)
		select {
		case <-b.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	select {
	case <-b.stop: // already stopped: the goroutine may not have run yet
		cancel()
	default:
	}
	// Under exactly-once, copies read the changelogs read_committed and
	// reach at most the last stable offsets: an open transaction is no lag.
	list := b.adm.ListEndOffsets
	if b.e.eos {
		list = b.adm.ListCommittedOffsets
	}
	listed, err := list(ctx, changelogs...)
	if err != nil {
		b.e.log.Warn("assignment: list changelog end offsets; comparing the members' offsets as they are", "err", err)
		return nil
	}
	ends := map[assign.TopicPartition]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset >= 0 {
			ends[assign.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
		}
	})
	return ends
}

// logPlan writes one "assignment" line per member: the tasks it gets now,
// why, and those it gets once their owner has revoked them.
func (b *groupBalancer) logPlan(generation int32, members []assign.Member, plan assign.Plan, final map[string]map[string][]int32) {
	type summary struct {
		tasks, waiting                        []string
		kept, caughtUp, leastLoaded, overload int
		moved                                 int
		lag                                   int64
	}
	sums := map[string]*summary{}
	for _, m := range members {
		sums[m.ID] = &summary{}
	}
	for _, d := range plan.Units {
		s := sums[d.Member]
		if s == nil {
			continue
		}
		now := true
		for _, tp := range d.Parts {
			if !slices.Contains(final[d.Member][tp.Topic], tp.Partition) {
				now = false
			}
		}
		if now {
			s.tasks = append(s.tasks, d.Names...)
		} else {
			s.waiting = append(s.waiting, d.Names...)
		}
		switch d.Reason {
		case assign.Kept:
			s.kept++
		case assign.CaughtUp:
			s.caughtUp++
		case assign.LeastLoaded:
			s.leastLoaded++
		case assign.Overloaded:
			s.overload++
		}
		if d.Owner != "" && d.Owner != d.Member {
			s.moved++
		}
		s.lag += d.Lag
	}
	for _, m := range members {
		s := sums[m.ID]
		args := []any{"member", m.ID}
		if m.Instance != "" {
			args = append(args, "instance_id", m.Instance)
		}
		args = append(args, "generation", generation, "tasks", s.tasks,
			"kept", s.kept, "caught_up", s.caughtUp, "least_loaded", s.leastLoaded,
			"moved", s.moved, "restore_lag", s.lag)
		if s.overload > 0 {
			args = append(args, "overloaded", s.overload)
		}
		if len(s.waiting) > 0 {
			args = append(args, "after_revoke", s.waiting)
		}
		var standbys, warmups []string
		for _, k := range plan.Standbys[m.ID] {
			if k.Warmup {
				warmups = append(warmups, k.String())
			} else {
				standbys = append(standbys, k.String())
			}
		}
		if len(standbys) > 0 {
			args = append(args, "standbys", standbys)
		}
		if len(warmups) > 0 {
			args = append(args, "warmups", warmups)
		}
		b.e.log.Info("assignment", args...)
	}
}
