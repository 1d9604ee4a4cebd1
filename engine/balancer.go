package engine

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Task assignment. The processes of one application share its input
// partitions through Kafka's classic group protocol, with this balancer
// (protocol "flowstate-v1"). Every member sends, in the user data of its
// subscription, the changelog offsets of every task store it has on disk:
// the open tasks' offsets as of their last commit (from memory), and the
// closed ones' from the file their task wrote when it closed (janitor.go),
// so that a join opens no RocksDB. The leader lists the changelogs' end
// offsets, computes every member's lag for every task, and assigns
// (assignTasks):
//
//   - the input partitions of one task together: partition p of every input
//     of a pipeline, and of every pipeline sharing one of those inputs,
//     since a partition feeds all the pipelines reading it ("units" below);
//   - to the member that owns the unit now (sticky), else to the member
//     with the smallest lag (its copy is the most caught up), else to the
//     least loaded one; never so that a member holds more than one unit
//     above another;
//   - cooperatively: a unit moving between members is first revoked by its
//     owner and assigned in the rebalance that follows
//     (kgo.BalancePlan.AdjustCooperative), so tasks that stay are never
//     stopped;
//   - with Config.NumStandbyReplicas standby copies of every stateful
//     unit on other members (assignStandbys), sent in the user data of
//     each member's SyncGroup assignment (withStandbys, standby.go).
//
// The assignment is deterministic: members and units are sorted, and ties
// are broken by that order.

// balancerProtocol names the group protocol of groupBalancer. A new
// assignment algorithm that old members could not follow gets a new name.
const balancerProtocol = "flowstate-v1"

// userDataVersion is the version byte of the subscription user data.
//
// Version 1, after the version byte:
//
//	uvarint  number of tasks, then for each, sorted by pipeline, partition:
//	  string   pipeline (uvarint length, bytes)
//	  varint   partition
//	  byte     flags: 1 = the task is open in the member (logged; the
//	           assignment goes by the owned partitions of the subscription)
//	  uvarint  number of stores, then for each, sorted by name:
//	    string   store
//	    varint   next changelog offset of the store (last applied + 1)
//
// A leader that cannot read a member's user data (a later version, or
// garbage) balances as if the member held no stores.
const userDataVersion = 1

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

const flagOpen = 1

func encodeUserData(states []storeState) []byte {
	states = slices.Clone(states)
	slices.SortFunc(states, func(a, b storeState) int {
		return cmp.Or(cmp.Compare(a.task.pipeline, b.task.pipeline), cmp.Compare(a.task.partition, b.task.partition))
	})
	b := []byte{userDataVersion}
	b = binary.AppendUvarint(b, uint64(len(states)))
	appendString := func(b []byte, s string) []byte {
		return append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	for _, s := range states {
		b = appendString(b, s.task.pipeline)
		b = binary.AppendVarint(b, int64(s.task.partition))
		var flags byte
		if s.open {
			flags |= flagOpen
		}
		b = append(b, flags)
		stores := make([]string, 0, len(s.changelog))
		for name := range s.changelog {
			stores = append(stores, name)
		}
		slices.Sort(stores)
		b = binary.AppendUvarint(b, uint64(len(stores)))
		for _, name := range stores {
			b = appendString(b, name)
			b = binary.AppendVarint(b, s.changelog[name])
		}
	}
	return b
}

// errUserData marks subscription user data that cannot be read.
var errUserData = errors.New("engine: bad subscription user data")

func decodeUserData(b []byte) ([]storeState, error) {
	if len(b) == 0 {
		return nil, nil // a member of another protocol, or one with nothing to say
	}
	if b[0] != userDataVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errUserData, b[0], userDataVersion)
	}
	b = b[1:]
	bad := func(what string) error { return fmt.Errorf("%w: truncated at %s", errUserData, what) }
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	varint := func() (int64, bool) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := uvarint()
		if !ok || n > uint64(len(b)) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	n, ok := uvarint()
	// Every task takes at least 4 bytes: a bound before allocating.
	if !ok || n > uint64(len(b))/4 {
		return nil, bad("task count")
	}
	states := make([]storeState, 0, n)
	for range n {
		var s storeState
		var p int64
		if s.task.pipeline, ok = str(); !ok {
			return nil, bad("pipeline")
		}
		if p, ok = varint(); !ok || p < 0 || p > math.MaxInt32 {
			return nil, bad("partition")
		}
		s.task.partition = int32(p)
		if len(b) == 0 {
			return nil, bad("flags")
		}
		s.open = b[0]&flagOpen != 0
		b = b[1:]
		ns, ok := uvarint()
		if !ok || ns > uint64(len(b))/2 {
			return nil, bad("store count")
		}
		s.changelog = make(map[string]int64, ns)
		for range ns {
			name, ok := str()
			if !ok {
				return nil, bad("store")
			}
			off, ok := varint()
			if !ok {
				return nil, bad("offset")
			}
			s.changelog[name] = off
		}
		states = append(states, s)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last task", errUserData, len(b))
	}
	return states, nil
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
	meta.UserData = encodeUserData(b.e.storeStates())
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
	standbys, err := decodeStandbys(a.UserData)
	if err != nil {
		// The partitions are still ours to run; a standby is an
		// optimization, so an unreadable list runs none.
		b.e.log.Warn("assignment: standby tasks unreadable; running none", "err", err)
	}
	b.e.setStandbys(standbys)
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
	in := assignInput{partitions: topics, pipelines: b.e.shapes()}
	byID := map[string]*kmsg.JoinGroupResponseMember{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		byID[m.MemberID] = m
		am := assignMember{
			id:         m.MemberID,
			topics:     meta.Topics,
			generation: meta.Generation,
			owned:      map[string][]int32{},
			stores:     map[taskKey]map[string]int64{},
		}
		if m.InstanceID != nil {
			am.instance = *m.InstanceID
		}
		if meta.Rack != nil {
			am.rack = *meta.Rack
		}
		for _, o := range meta.OwnedPartitions {
			am.owned[o.Topic] = append(am.owned[o.Topic], o.Partitions...)
		}
		states, err := decodeUserData(meta.UserData)
		if err != nil {
			log.Warn("assignment: member's store states unreadable; balancing as if it had none", "member", m.MemberID, "err", err)
		}
		open := 0
		for _, s := range states {
			am.stores[s.task] = s.changelog
			if s.open {
				open++
			}
		}
		log.Debug("assignment: member", "member", m.MemberID, "topics", meta.Topics, "generation", meta.Generation,
			"stores_open", open, "stores_closed", len(states)-open)
		in.members = append(in.members, am)
	})
	in.ends = b.endOffsets(in.pipelines, topics)
	in.standbys = b.e.cfg.NumStandbyReplicas
	in.maxWarmups, in.acceptableLag = b.e.cfg.maxWarmups(), b.e.cfg.acceptableLag()

	plan := assignTasks(in)
	// Warm-ups ask for probing rebalances until they have caught up and
	// their tasks moved (warmup.go).
	b.e.warmups.Store(int32(plan.warmups))
	bp := cb.NewPlan()
	for id, parts := range plan.members {
		for topic, ps := range parts {
			bp.AddPartitions(byID[id], topic, ps)
		}
	}
	bp.AdjustCooperative(cb)
	b.logPlan(cb.Info().Generation, in.members, plan, bp.AsMemberIDMap())
	if len(plan.standbys) == 0 {
		return bp // kgo logs a *kgo.BalancePlan it is given
	}
	return withStandbys{bp, plan.standbys}
}

// standbyDataVersion is the version byte of the assignment user data,
// which lists the member's standby tasks.
//
// Version 2, after the version byte:
//
//	uvarint  number of tasks, then for each, in unit order:
//	  string   pipeline (uvarint length, bytes)
//	  varint   partition
//	  byte     kind: 0 a standby, 1 a warm-up (a copy filling up on the
//	           member the task is to move to)
//
// Version 1 is version 2 without the kind byte: every task a standby.
// Empty user data means no standbys.
const standbyDataVersion = 2

// standbyTask is one standby task of a member's assignment.
type standbyTask struct {
	taskKey
	warmup bool
}

// withStandbys is the leader's assignment: the partitions of the balance
// plan, and each member's standby tasks in its assignment's user data.
type withStandbys struct {
	bp       *kgo.BalancePlan
	standbys map[string][]standbyTask // member -> tasks
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
		a.UserData = encodeStandbys(ks)
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return out
}

func encodeStandbys(ks []standbyTask) []byte {
	b := []byte{standbyDataVersion}
	b = binary.AppendUvarint(b, uint64(len(ks)))
	for _, k := range ks {
		b = binary.AppendUvarint(b, uint64(len(k.pipeline)))
		b = append(b, k.pipeline...)
		b = binary.AppendVarint(b, int64(k.partition))
		kind := byte(0)
		if k.warmup {
			kind = 1
		}
		b = append(b, kind)
	}
	return b
}

func decodeStandbys(b []byte) ([]standbyTask, error) {
	if len(b) == 0 {
		return nil, nil
	}
	version := b[0]
	if version != 1 && version != standbyDataVersion {
		return nil, fmt.Errorf("%w: standby version %d, want at most %d", errUserData, version, standbyDataVersion)
	}
	b = b[1:]
	bad := func(what string) error { return fmt.Errorf("%w: standbys truncated at %s", errUserData, what) }
	n, w := binary.Uvarint(b)
	// Every task takes at least 2 bytes: a bound before allocating.
	if w <= 0 || n > uint64(len(b[w:]))/2 {
		return nil, bad("task count")
	}
	b = b[w:]
	ks := make([]standbyTask, 0, n)
	for range n {
		l, w := binary.Uvarint(b)
		if w <= 0 || l > uint64(len(b[w:])) {
			return nil, bad("pipeline")
		}
		pipeline := string(b[w : w+int(l)])
		b = b[w+int(l):]
		p, w := binary.Varint(b)
		if w <= 0 || p < 0 || p > math.MaxInt32 {
			return nil, bad("partition")
		}
		b = b[w:]
		k := standbyTask{taskKey: taskKey{pipeline, int32(p)}}
		if version >= 2 {
			if len(b) == 0 || b[0] > 1 {
				return nil, bad("kind")
			}
			k.warmup = b[0] == 1
			b = b[1:]
		}
		ks = append(ks, k)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last standby", errUserData, len(b))
	}
	return ks, nil
}

// shapes describes the engine's pipelines for assignTasks.
func (e *Engine) shapes() []pipelineShape {
	out := make([]pipelineShape, len(e.pipelines))
	for i, p := range e.pipelines {
		out[i] = pipelineShape{name: p.cfg.Name, inputs: p.cfg.Inputs, stores: p.cfg.Stores, changelogs: p.changelogs}
	}
	return out
}

// endOffsets lists the end offsets of the changelog partitions of every
// task to assign. On a failure (or a timeout) the partitions not listed
// are missing, and assignTasks compares the members' offsets as they are.
func (b *groupBalancer) endOffsets(shapes []pipelineShape, topics map[string]int32) map[topicPartition]int64 {
	var changelogs []string
	for _, s := range shapes {
		changelogs = append(changelogs, s.changelogs...)
	}
	if len(changelogs) == 0 || len(topics) == 0 || b.adm == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), endOffsetsTimeout)
	defer cancel()
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
	ends := map[topicPartition]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset >= 0 {
			ends[topicPartition{o.Topic, o.Partition}] = o.Offset
		}
	})
	return ends
}

// logPlan writes one "assignment" line per member: the tasks it gets now,
// why, and those it gets once their owner has revoked them.
func (b *groupBalancer) logPlan(generation int32, members []assignMember, plan assignPlan, final map[string]map[string][]int32) {
	type summary struct {
		tasks, waiting                        []string
		kept, caughtUp, leastLoaded, overload int
		moved                                 int
		lag                                   int64
	}
	sums := map[string]*summary{}
	for _, m := range members {
		sums[m.id] = &summary{}
	}
	for _, d := range plan.units {
		s := sums[d.member]
		if s == nil {
			continue
		}
		now := true
		for _, tp := range d.parts {
			if !slices.Contains(final[d.member][tp.topic], tp.partition) {
				now = false
			}
		}
		if now {
			s.tasks = append(s.tasks, d.names...)
		} else {
			s.waiting = append(s.waiting, d.names...)
		}
		switch d.reason {
		case reasonKept:
			s.kept++
		case reasonCaughtUp:
			s.caughtUp++
		case reasonLeastLoaded:
			s.leastLoaded++
		case reasonOverloaded:
			s.overload++
		}
		if d.owner != "" && d.owner != d.member {
			s.moved++
		}
		s.lag += d.lag
	}
	for _, m := range members {
		s := sums[m.id]
		args := []any{"member", m.id}
		if m.instance != "" {
			args = append(args, "instance_id", m.instance)
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
		for _, k := range plan.standbys[m.id] {
			if k.warmup {
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

// pipelineShape is what assignment needs to know of a pipeline.
type pipelineShape struct {
	name       string
	inputs     []string
	stores     []string
	changelogs []string // changelog topic per store
}

// assignMember is one group member as the leader sees it.
type assignMember struct {
	id         string
	instance   string // instance_id, "" for a dynamic member
	rack       string // Config.Rack, "" when unset
	topics     []string
	generation int32              // of owned
	owned      map[string][]int32 // the partitions the member consumes now
	stores     map[taskKey]map[string]int64
}

// assignInput is everything assignTasks decides from.
type assignInput struct {
	members []assignMember
	// partitions are the topics to assign, with their partition counts.
	partitions map[string]int32
	pipelines  []pipelineShape
	// ends are the changelogs' end offsets; a partition missing here is
	// taken to end at the highest offset a member reported for it.
	ends map[topicPartition]int64
	// standbys is how many standby copies of each unit with stores to
	// assign (Config.NumStandbyReplicas).
	standbys int
	// maxWarmups and acceptableLag are Config.MaxWarmupReplicas and
	// Config.AcceptableRecoveryLag.
	maxWarmups    int
	acceptableLag int64
}

// assignReason says why a unit went to its member.
type assignReason string

const (
	reasonKept        assignReason = "kept"         // its owner keeps it
	reasonCaughtUp    assignReason = "caught_up"    // the member with room whose copy lags least
	reasonLeastLoaded assignReason = "least_loaded" // no member with room has a useful copy
	reasonOverloaded  assignReason = "overloaded"   // no member that subscribes to it has room
	reasonWarmingUp   assignReason = "warming_up"   // its owner keeps it while another member's copy catches up
)

// unitDecision is where one unit went.
type unitDecision struct {
	names  []string         // its tasks, pipeline/partition (topic/partition for a topic no pipeline reads)
	parts  []topicPartition // its input partitions, sorted
	member string
	owner  string // the member owning it before, or ""
	reason assignReason
	lag    int64 // the changelog records the member has to restore
	// standbys are the members given a standby copy of its tasks.
	standbys []string
}

// assignPlan is the result of assignTasks.
type assignPlan struct {
	members map[string]map[string][]int32 // member -> topic -> sorted partitions
	units   []unitDecision                // in unit order
	// standbys are the tasks each member keeps a standby copy of, in unit
	// order (warm-ups included, marked); members without any are missing.
	standbys map[string][]standbyTask
	// warmups counts the units kept on their owner while a warm-up copy
	// catches up on the member they should move to.
	warmups int
}

// unit is the input partitions that go to one member together.
type unit struct {
	parts []topicPartition
	tasks []taskKey
}

// assignTasks assigns units of input partitions to members: sticky, then
// lag-aware, then by load, with every member within one unit of the
// others (unless subscriptions differ so much that no member with room
// may take a unit). It is a pure function of in.
func assignTasks(in assignInput) assignPlan {
	members := slices.Clone(in.members)
	slices.SortFunc(members, func(a, b assignMember) int {
		// kgo's order: static members first, by instance_id, then by id.
		if (a.instance != "") != (b.instance != "") {
			if a.instance != "" {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.instance, b.instance), cmp.Compare(a.id, b.id))
	})
	plan := assignPlan{members: map[string]map[string][]int32{}}
	for _, m := range members {
		plan.members[m.id] = map[string][]int32{}
	}
	if len(members) == 0 {
		return plan
	}
	subscribed := make([]map[string]bool, len(members))
	for i, m := range members {
		subscribed[i] = map[string]bool{}
		for _, t := range m.topics {
			subscribed[i][t] = true
		}
	}
	eligibleFor := func(parts []topicPartition) []int {
		var el []int
		for i := range members {
			ok := true
			for _, tp := range parts {
				ok = ok && subscribed[i][tp.topic]
			}
			if ok {
				el = append(el, i)
			}
		}
		return el
	}

	var units []unit
	var eligible [][]int
	for _, u := range buildUnits(in.partitions, in.pipelines) {
		if el := eligibleFor(u.parts); len(el) > 0 {
			units, eligible = append(units, u), append(eligible, el)
			continue
		}
		// No member reads all of the unit's topics (members with different
		// pipelines): its partitions go one by one to members that read
		// them.
		for _, tp := range u.parts {
			el := eligibleFor([]topicPartition{tp})
			if len(el) == 0 {
				continue
			}
			one := unit{parts: []topicPartition{tp}}
			for _, k := range u.tasks {
				if readsTopic(in.pipelines, k.pipeline, tp.topic) {
					one.tasks = append(one.tasks, k)
				}
			}
			units, eligible = append(units, one), append(eligible, el)
		}
	}

	lag, useful := lags(in, members, units)
	owner, claimed := owners(members, units, eligible)

	n, m := len(units), len(members)
	minLoad, extra := n/m, n%m
	load := make([]int, m)
	assignedTo := make([]int, n)
	reasons := make([]assignReason, n)
	for u := range assignedTo {
		assignedTo[u] = -1
	}

	// Owners keep their units up to their share. Those owning the most get
	// the shares of one unit more, so that the fewest units move.
	owned := make([][]int, m)
	for u, o := range owner {
		if o >= 0 {
			owned[o] = append(owned[o], u)
		}
	}
	capOf := make([]int, m)
	byOwned := make([]int, m)
	for i := range byOwned {
		byOwned[i] = i
		capOf[i] = minLoad
	}
	slices.SortStableFunc(byOwned, func(a, b int) int { return cmp.Compare(len(owned[b]), len(owned[a])) })
	for _, i := range byOwned {
		if len(owned[i]) > minLoad && extra > 0 {
			capOf[i]++
			extra--
		}
	}
	// A member short of its share receives what owners give up.
	receives := func(r int) bool {
		return len(owned[r]) < minLoad || (len(owned[r]) == minLoad && extra > 0)
	}
	for i, us := range owned {
		if len(us) > capOf[i] {
			// Give up the units some receiver has the best copy of; keep
			// those nobody else could take over cheaply, then those of
			// which the member owns the most partitions (a unit the old
			// balancer split), then the first ones.
			alt := map[int]int64{}
			for _, u := range us {
				alt[u] = math.MaxInt64
				for _, r := range eligible[u] {
					if r != i && receives(r) && lag[u][r] < alt[u] {
						alt[u] = lag[u][r]
					}
				}
			}
			slices.SortStableFunc(us, func(a, b int) int {
				return cmp.Or(cmp.Compare(alt[b], alt[a]), cmp.Compare(claimed[b], claimed[a]))
			})
			us = us[:capOf[i]]
		}
		for _, u := range us {
			assignedTo[u], reasons[u] = i, reasonKept
			load[i]++
		}
	}

	// The rest go one at a time: of every unit and member with room, the
	// pair with the least lag, then the least loaded member, then the
	// first unit and member.
	hasRoom := func(i int) bool { return load[i] < minLoad || (load[i] == minLoad && extra > 0) }
	give := func(u, i int, r assignReason) {
		if load[i] == minLoad {
			extra--
		}
		assignedTo[u], reasons[u] = i, r
		load[i]++
	}
	for {
		bu, bi := -1, -1
		for u := range units {
			if assignedTo[u] >= 0 {
				continue
			}
			for _, i := range eligible[u] {
				if !hasRoom(i) {
					continue
				}
				if bu < 0 || lag[u][i] < lag[bu][bi] || (lag[u][i] == lag[bu][bi] && load[i] < load[bi]) {
					bu, bi = u, i
				}
			}
		}
		if bu < 0 {
			break
		}
		r := reasonLeastLoaded
		if useful[bu][bi] {
			r = reasonCaughtUp
		}
		give(bu, bi, r)
	}
	// Units no member with room may take go to the least loaded member
	// that reads them.
	for u := range units {
		if assignedTo[u] >= 0 {
			continue
		}
		best := -1
		for _, i := range eligible[u] {
			if best < 0 || load[i] < load[best] || (load[i] == load[best] && lag[u][i] < lag[u][best]) {
				best = i
			}
		}
		assignedTo[u], reasons[u] = best, reasonOverloaded
		load[best]++
	}

	// Warm-ups (KIP-441): a unit that would go to a member whose copy lags
	// more than acceptableLag, while another member's copy is within it,
	// goes to that member instead, beyond its share: its owner when the
	// owner's copy is caught up, else the most caught-up member (after a
	// failure, the holder of a standby). The member it should go to gets a
	// warm-up copy: a standby. At most maxWarmups at a time; probing
	// rebalances assign again, and the unit moves once the copy has caught
	// up. Nothing stops processing while a member fills its stores, and no
	// task restores a changelog that another member holds a copy of.
	// stateful marks the units with a task that has stores: only those
	// have copies to warm up or keep as standbys.
	stateful := make([]bool, n)
	for u, un := range units {
		for _, k := range un.tasks {
			stateful[u] = stateful[u] || hasStores(in.pipelines, k.pipeline)
		}
	}
	warmupOf := make([]int, n)
	for u := range warmupOf {
		warmupOf[u] = -1
	}
	for u := range units {
		to := assignedTo[u]
		if !stateful[u] || plan.warmups >= in.maxWarmups || owner[u] == to || lag[u][to] <= in.acceptableLag {
			continue
		}
		from := -1
		if o := owner[u]; o >= 0 && slices.Contains(eligible[u], o) && lag[u][o] <= in.acceptableLag {
			from = o
		} else {
			for _, i := range eligible[u] {
				if i != to && lag[u][i] <= in.acceptableLag &&
					(from < 0 || lag[u][i] < lag[u][from] || (lag[u][i] == lag[u][from] && load[i] < load[from])) {
					from = i
				}
			}
		}
		if from < 0 {
			continue // no copy is caught up: the unit restores where it goes
		}
		load[to]--
		load[from]++
		assignedTo[u], reasons[u], warmupOf[u] = from, reasonWarmingUp, to
		plan.warmups++
	}

	standbyOf := assignStandbys(in, stateful, eligible, assignedTo, lag, load)
	for u, w := range warmupOf {
		if w >= 0 && !slices.Contains(standbyOf[u], w) {
			standbyOf[u] = append(standbyOf[u], w)
		}
	}
	plan.standbys = map[string][]standbyTask{}
	for u, un := range units {
		i := assignedTo[u]
		d := unitDecision{parts: un.parts, member: members[i].id, reason: reasons[u], lag: lag[u][i]}
		for _, s := range standbyOf[u] {
			d.standbys = append(d.standbys, members[s].id)
			for _, k := range un.tasks {
				if hasStores(in.pipelines, k.pipeline) {
					plan.standbys[members[s].id] = append(plan.standbys[members[s].id], standbyTask{k, warmupOf[u] == s})
				}
			}
		}
		if owner[u] >= 0 {
			d.owner = members[owner[u]].id
		}
		for _, k := range un.tasks {
			d.names = append(d.names, k.String())
		}
		if len(un.tasks) == 0 {
			for _, tp := range un.parts {
				d.names = append(d.names, tp.topic+"/"+strconv.Itoa(int(tp.partition)))
			}
		}
		plan.units = append(plan.units, d)
		for _, tp := range un.parts {
			mp := plan.members[members[i].id]
			mp[tp.topic] = append(mp[tp.topic], tp.partition)
		}
	}
	for _, mp := range plan.members {
		for _, ps := range mp {
			slices.Sort(ps)
		}
	}
	return plan
}

// assignStandbys picks, for every unit with stores, up to in.standbys
// members to keep standby copies of its tasks: never the unit's active
// member, a member at most once per unit. When members set a rack, a
// member on a rack that holds neither the active nor an earlier standby of
// the unit goes first, so that one rack's failure does not take every
// copy. Then members below their share of all tasks (actives and standbys
// over members, rounded up) go before those at it, so that one member
// whose old copies lag least does not end up with every standby; then the
// members whose copy lags least (a member keeps the standbys it has,
// sticky), then the least loaded, then the members after the active one in
// member order, wrapping around. It returns the chosen members per unit.
func assignStandbys(in assignInput, stateful []bool, eligible [][]int, assignedTo []int, lag [][]int64, load []int) [][]int {
	out := make([][]int, len(stateful))
	if in.standbys <= 0 {
		return out
	}
	tasks := 0
	for _, l := range load {
		tasks += l
	}
	for u, ok := range stateful {
		if ok {
			tasks += min(in.standbys, max(len(eligible[u])-1, 0))
		}
	}
	share := (tasks + len(load) - 1) / max(len(load), 1)
	total := slices.Clone(load)
	// atShare is 1 for a member holding its share of the tasks or more.
	atShare := func(i int) int {
		if total[i] >= share {
			return 1
		}
		return 0
	}
	for u := range stateful {
		if !stateful[u] {
			continue // a stateless task has nothing to copy
		}
		var cands []int
		for _, i := range eligible[u] {
			if i != assignedTo[u] {
				cands = append(cands, i)
			}
		}
		// Ties go round from the active member, so that the copies of
		// neighbouring units land on different members.
		m, act := len(total), assignedTo[u]
		racks := map[string]bool{}
		if r := in.members[act].rack; r != "" {
			racks[r] = true
		}
		// rackUsed is 1 for a member on a rack that already holds a copy
		// of the unit, 0 otherwise (and for members without a rack).
		rackUsed := func(i int) int {
			if r := in.members[i].rack; r != "" && racks[r] {
				return 1
			}
			return 0
		}
		for range min(in.standbys, len(cands)) {
			best := slices.MinFunc(cands, func(a, b int) int {
				return cmp.Or(cmp.Compare(rackUsed(a), rackUsed(b)), cmp.Compare(atShare(a), atShare(b)),
					cmp.Compare(lag[u][a], lag[u][b]), cmp.Compare(total[a], total[b]), cmp.Compare((a-act+m)%m, (b-act+m)%m))
			})
			out[u] = append(out[u], best)
			total[best]++
			if r := in.members[best].rack; r != "" {
				racks[r] = true
			}
			cands = slices.DeleteFunc(cands, func(i int) bool { return i == best })
		}
	}
	rebalanceStandbys(in, out, eligible, assignedTo, lag, total, share)
	return out
}

// rebalanceStandbys moves standbys from members above share to members
// below it, while one can take one: a member that reads the unit, is not
// its active, holds no copy of it yet, and whose rack is no worse for the
// unit than the one it replaces. The greedy pass of assignStandbys fills
// the members it meets first; the standbys of the tasks active on a member
// can only go elsewhere, so that member may be left with too few. Of the
// members that can take a standby, the one whose copy lags least does.
func rebalanceStandbys(in assignInput, out [][]int, eligible [][]int, assignedTo []int, lag [][]int64, total []int, share int) {
	// taken reports whether member i's rack holds a copy of unit u other
	// than the one on member skip.
	taken := func(u, i, skip int) bool {
		r := in.members[i].rack
		if r == "" {
			return false
		}
		if in.members[assignedTo[u]].rack == r {
			return true
		}
		for _, j := range out[u] {
			if j != skip && in.members[j].rack == r {
				return true
			}
		}
		return false
	}
	for moved := true; moved; {
		moved = false
		for u := range out {
			for k, x := range out[u] {
				if total[x] <= share {
					continue
				}
				to := -1
				for _, y := range eligible[u] {
					if total[y] >= share || y == assignedTo[u] || slices.Contains(out[u], y) {
						continue
					}
					if taken(u, y, x) && !taken(u, x, x) {
						continue // a move onto a rack with a copy from one without
					}
					if to < 0 || lag[u][y] < lag[u][to] || (lag[u][y] == lag[u][to] && total[y] < total[to]) {
						to = y
					}
				}
				if to < 0 {
					continue
				}
				out[u][k] = to
				total[x]--
				total[to]++
				moved = true
			}
		}
	}
}

func hasStores(shapes []pipelineShape, pipeline string) bool {
	for _, s := range shapes {
		if s.name == pipeline {
			return len(s.stores) > 0
		}
	}
	return false
}

func readsTopic(shapes []pipelineShape, pipeline, topic string) bool {
	for _, s := range shapes {
		if s.name == pipeline {
			return slices.Contains(s.inputs, topic)
		}
	}
	return false
}

// buildUnits groups the partitions of topics into units: topics read by
// one pipeline, or linked through pipelines sharing topics, form a
// component, and partition p of every topic of a component is one unit.
// Units are sorted by their component's first topic, then partition.
func buildUnits(topics map[string]int32, shapes []pipelineShape) []unit {
	root := map[string]string{}
	var find func(string) string
	find = func(t string) string {
		if root[t] == t {
			return t
		}
		r := find(root[t])
		root[t] = r
		return r
	}
	for t := range topics {
		root[t] = t
	}
	for _, s := range shapes {
		var first string
		for _, t := range s.inputs {
			if _, ok := topics[t]; !ok {
				continue
			}
			if first == "" {
				first = t
				continue
			}
			// The smaller name roots, so a component is named by its first topic.
			a, b := find(first), find(t)
			if a > b {
				a, b = b, a
			}
			root[b] = a
		}
	}
	comps := map[string][]string{}
	for t := range topics {
		r := find(t)
		comps[r] = append(comps[r], t)
	}
	names := make([]string, 0, len(comps))
	for r := range comps {
		names = append(names, r)
	}
	slices.Sort(names)
	var units []unit
	for _, r := range names {
		ts := comps[r]
		slices.Sort(ts)
		var maxP int32
		for _, t := range ts {
			maxP = max(maxP, topics[t])
		}
		for p := range maxP {
			var u unit
			for _, t := range ts {
				if p < topics[t] {
					u.parts = append(u.parts, topicPartition{t, p})
				}
			}
			for _, s := range shapes {
				for _, t := range s.inputs {
					if _, ok := topics[t]; ok && find(t) == r && p < topics[t] {
						u.tasks = append(u.tasks, taskKey{s.name, p})
						break
					}
				}
			}
			slices.SortFunc(u.tasks, func(a, b taskKey) int { return cmp.Compare(a.pipeline, b.pipeline) })
			units = append(units, u)
		}
	}
	return units
}

// lags returns, for every unit and member, the changelog records the member
// would restore to run the unit's tasks, and whether its copy saves any of
// them. A member without a copy of a store restores the store's whole
// changelog; one reporting an offset past the end holds a store of another
// changelog (a recreated topic) and is treated the same.
func lags(in assignInput, members []assignMember, units []unit) (lag [][]int64, useful [][]bool) {
	shape := map[string]pipelineShape{}
	for _, s := range in.pipelines {
		shape[s.name] = s
	}
	lag = make([][]int64, len(units))
	useful = make([][]bool, len(units))
	for u, un := range units {
		lag[u] = make([]int64, len(members))
		useful[u] = make([]bool, len(members))
		for _, k := range un.tasks {
			s := shape[k.pipeline]
			for si, store := range s.stores {
				end, ok := in.ends[topicPartition{s.changelogs[si], k.partition}]
				if !ok {
					end = 0
					for _, m := range members {
						end = max(end, m.stores[k][store])
					}
				}
				for i, m := range members {
					off, ok := m.stores[k][store]
					if !ok || off > end || off < 0 {
						off = 0
					}
					lag[u][i] += end - off
					useful[u][i] = useful[u][i] || off > 0
				}
			}
		}
	}
	return lag, useful
}

// owners returns, for every unit, the index of the member consuming it now,
// or -1, and how many of the unit's partitions that member owns. Of members claiming a partition, only those at the highest
// generation count (a member that missed rebalances may claim partitions
// moved since); of a unit split between members, the one with most of its
// partitions owns it.
func owners(members []assignMember, units []unit, eligible [][]int) (owner, claimed []int) {
	maxGen := map[topicPartition]int32{}
	for _, m := range members {
		for t, ps := range m.owned {
			for _, p := range ps {
				tp := topicPartition{t, p}
				if g, ok := maxGen[tp]; !ok || m.generation > g {
					maxGen[tp] = m.generation
				}
			}
		}
	}
	owner, claimed = make([]int, len(units)), make([]int, len(units))
	for u, un := range units {
		owner[u] = -1
		best := 0
		for _, i := range eligible[u] {
			m := members[i]
			n := 0
			for _, tp := range un.parts {
				if slices.Contains(m.owned[tp.topic], tp.partition) && m.generation >= maxGen[tp] {
					n++
				}
			}
			if n > best || (n == best && n > 0 && m.generation > members[owner[u]].generation) {
				owner[u], best = i, n
			}
		}
		claimed[u] = best
	}
	return owner, claimed
}
