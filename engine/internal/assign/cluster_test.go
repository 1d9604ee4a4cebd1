package assign

import (
	"maps"
	"slices"
	"strconv"
	"testing"
)

// cluster simulates a group of processes that balance with Assign as kgo's
// cooperative protocol does: a partition moving between members is first
// revoked by its owner, and assigned in the rebalance that follows. The
// processes report their stores as the engine does: a running task's and
// a standby's copy is caught up, a closed copy stays at the offset it had
// when it closed while the changelog goes on. After every Assign the plan
// is checked against the invariants of check.
type cluster struct {
	tb    testing.TB
	base  Input // Partitions, Pipelines, Standbys, MaxWarmups, AcceptableLag
	units []unit
	ends  map[TopicPartition]int64
	procs []*proc
	gen   int32
	// runner is the process running each task, "" while nobody does.
	runner map[Task]string
	// revokedFrom is the process a task was taken from while still in
	// the group, until the task runs again.
	revokedFrom map[Task]string
	// moves counts, per task, the moves between processes both in the
	// group: those the balancer chose. forced counts those of tasks whose
	// process left.
	moves, forced map[Task]int
	rounds        int // calls of Assign
	// since and visits, from markStart, are where each task ran then and
	// the other processes it has run on since.
	since  map[Task]string
	visits map[Task]map[string]bool
}

// markStart starts counting visits.
func (c *cluster) markStart() {
	c.since, c.visits = maps.Clone(c.runner), map[Task]map[string]bool{}
}

// mostVisits is the task that ran on the most processes other than its
// own since markStart, and their number.
func (c *cluster) mostVisits() (Task, int) {
	var worst Task
	n := 0
	for k, v := range c.visits {
		if len(v) > n || (len(v) == n && k.String() < worst.String()) {
			worst, n = k, len(v)
		}
	}
	return worst, n
}

// proc is one process; a restart keeps its name, rack and disk, and joins
// as a new member.
type proc struct {
	name, id, rack string
	incarnation    int
	up             bool
	owned          map[string][]int32
	gen            int32 // of owned
	// acquired is, per owned partition, the generation it was assigned
	// to the process in, as the engine reports it.
	acquired map[TopicPartition]int32
	// copies are the task stores on disk: task -> store -> next offset.
	copies  map[Task]map[string]int64
	standby map[Task]bool // tailed: its copies follow the changelogs
}

func newCluster(tb testing.TB, base Input) *cluster {
	c := &cluster{
		tb: tb, base: base, units: buildUnits(base.Partitions, base.Pipelines),
		ends: map[TopicPartition]int64{}, runner: map[Task]string{}, revokedFrom: map[Task]string{},
		moves: map[Task]int{}, forced: map[Task]int{},
	}
	for _, s := range base.Pipelines {
		for _, cl := range s.Changelogs {
			for _, in := range s.Inputs {
				for p := range base.Partitions[in] {
					c.ends[TopicPartition{cl, p}] = 0
				}
			}
		}
	}
	return c
}

func (c *cluster) topics() []string { return slices.Sorted(maps.Keys(c.base.Partitions)) }

func (c *cluster) proc(name string) *proc {
	for _, p := range c.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// add starts a process with an empty disk; it joins at the next rebalance.
func (c *cluster) add(name, rack string) {
	c.procs = append(c.procs, &proc{name: name, rack: rack, copies: map[Task]map[string]int64{}})
	c.start(c.procs[len(c.procs)-1])
}

func (c *cluster) start(p *proc) {
	p.incarnation++
	p.id = p.name + "#" + strconv.Itoa(p.incarnation)
	p.up, p.owned, p.gen, p.standby, p.acquired = true, map[string][]int32{}, -1, map[Task]bool{}, map[TopicPartition]int32{}
}

// stop stops a process (it leaves the group); its disk stays.
func (c *cluster) stop(name string) {
	p := c.proc(name)
	p.up, p.owned, p.standby, p.acquired = false, nil, nil, nil
	for k, r := range c.runner {
		if r == name {
			c.runner[k] = ""
			c.forced[k]++
		}
	}
}

// advance appends n records to every changelog; running tasks and
// standbys follow.
func (c *cluster) advance(n int64) {
	for tp := range c.ends {
		c.ends[tp] += n
	}
	c.follow()
}

// follow brings the copies of running tasks and standbys to the ends.
func (c *cluster) follow() {
	for k, name := range c.runner {
		if name != "" {
			c.catchUp(c.proc(name), k, 0)
		}
	}
	for _, p := range c.procs {
		for k := range p.standby {
			c.catchUp(p, k, standbyTail)
		}
	}
}

// standbyTail is how far a standby trails the end of its changelogs.
const standbyTail = 50

// catchUp brings p's copy of k to behind records before the ends, or
// leaves it where it is if that is further.
func (c *cluster) catchUp(p *proc, k Task, behind int64) {
	s := c.shape(k.Pipeline)
	if len(s.Stores) == 0 {
		return
	}
	old := p.copies[k]
	offs := make(map[string]int64, len(s.Stores))
	for i, st := range s.Stores {
		offs[st] = max(old[st], c.ends[TopicPartition{s.Changelogs[i], k.Partition}]-behind)
	}
	p.copies[k] = offs
}

func (c *cluster) shape(name string) Pipeline {
	for _, s := range c.base.Pipelines {
		if s.Name == name {
			return s
		}
	}
	c.tb.Fatalf("no pipeline %s", name)
	return Pipeline{}
}

func (c *cluster) input() Input {
	in := c.base
	in.Members = nil
	in.Ends = maps.Clone(c.ends)
	for _, p := range c.procs {
		if !p.up {
			continue
		}
		// Assign changes nothing of its input; apply and follow replace
		// owned and the copies' offsets rather than change them.
		in.Members = append(in.Members, Member{ID: p.id, Rack: p.rack, Topics: c.topics(), Generation: p.gen, Owned: p.owned, Acquired: p.acquired, Stores: p.copies})
	}
	return in
}

// rebalance runs rebalances until one assigns every partition to where the
// plan wants it and the plan has no warm-ups left (the probing rebalances
// of warm-ups included). It returns the last plan.
func (c *cluster) rebalance() Plan {
	c.tb.Helper()
	for round := 0; ; round++ {
		if round > 50 {
			c.tb.Fatalf("no stable assignment after %d rebalances", round)
		}
		in := c.input()
		plan := Assign(in)
		c.rounds++
		c.check(in, plan)
		held := c.apply(plan)
		if !held && plan.Warmups == 0 {
			return plan
		}
		// A rebalance follows at once for the revoked partitions; for
		// warm-ups, after a probing interval, by when they have caught up
		// (follow, in apply).
	}
}

// apply gives every member its partitions of plan, holding back those
// another member owns (which that member revokes), and reports whether it
// held any back.
func (c *cluster) apply(plan Plan) (held bool) {
	ownerOf := map[TopicPartition]*proc{}
	for _, p := range c.procs {
		for t, ps := range p.owned {
			for _, x := range ps {
				ownerOf[TopicPartition{t, x}] = p
			}
		}
	}
	c.gen++
	byID := map[string]*proc{}
	for _, p := range c.procs {
		if p.up {
			byID[p.id] = p
		}
	}
	next := map[*proc]map[string][]int32{}
	for id, topics := range plan.Members {
		p := byID[id]
		next[p] = map[string][]int32{}
		for t, ps := range topics {
			for _, x := range ps {
				if o := ownerOf[TopicPartition{t, x}]; o != nil && o != p {
					held = true
					continue
				}
				next[p][t] = append(next[p][t], x)
			}
		}
	}
	for p, owned := range next {
		acquired := map[TopicPartition]int32{}
		for t, ps := range owned {
			for _, x := range ps {
				tp := TopicPartition{t, x}
				gen, ok := p.acquired[tp]
				if !ok {
					gen = c.gen
				}
				acquired[tp] = gen
			}
		}
		p.owned, p.gen, p.acquired = owned, c.gen, acquired
		p.standby = map[Task]bool{}
		for _, s := range plan.Standbys[p.id] {
			p.standby[s.Task] = true
		}
	}
	// Who runs what now.
	on := map[TopicPartition]*proc{}
	for p, owned := range next {
		for t, ps := range owned {
			for _, x := range ps {
				on[TopicPartition{t, x}] = p
			}
		}
	}
	for _, un := range c.units {
		on := on[un.parts[0]]
		for _, k := range un.tasks {
			was := c.runner[k]
			switch {
			case on == nil && was != "":
				c.revokedFrom[k], c.runner[k] = was, ""
			case on != nil && was == "":
				if from := c.revokedFrom[k]; from != "" && from != on.name {
					if q := c.proc(from); q != nil && q.up {
						c.moves[k]++
					}
				}
				delete(c.revokedFrom, k)
				c.runner[k] = on.name
				if c.visits != nil && on.name != c.since[k] {
					if c.visits[k] == nil {
						c.visits[k] = map[string]bool{}
					}
					c.visits[k][on.name] = true
				}
			case on != nil && was != on.name:
				c.tb.Fatalf("%s went from %s to %s without a revoke", k, was, on.name)
			}
		}
	}
	c.follow()
	return held
}

// check asserts the invariants of one plan for its input:
//   - every partition goes to exactly one member, and those of a unit to
//     the same one;
//   - the units are balanced within one, counting a unit kept where it is
//     while a warm-up fills on the member it should go to on that member;
//   - at most MaxWarmups warm-ups;
//   - sticky: a unit leaves a member that owns it only when that member
//     owns more than its share;
//   - every stateful unit has min(Standbys, members-1) standbys, on
//     members other than its active one and each other, spread over as
//     many racks as the members have (the active's included); stateless
//     units have none.
func (c *cluster) check(in Input, plan Plan) {
	c.tb.Helper()
	if len(in.Members) == 0 {
		return
	}
	where := map[TopicPartition]string{}
	for id, topics := range plan.Members {
		for t, ps := range topics {
			for _, x := range ps {
				tp := TopicPartition{t, x}
				if other, ok := where[tp]; ok {
					c.tb.Fatalf("%s/%d on %s and %s", t, x, other, id)
				}
				where[tp] = id
			}
		}
	}
	rack := map[string]string{}
	owns := map[TopicPartition]string{}
	ownedUnits := map[string]int{}
	for _, m := range in.Members {
		rack[m.ID] = m.Rack
		for t, ps := range m.Owned {
			for _, x := range ps {
				owns[TopicPartition{t, x}] = m.ID
			}
		}
	}
	racks := map[string]bool{}
	for _, m := range in.Members {
		racks[m.Rack] = true
	}
	warmTo := map[Task]string{} // task -> its warm-up member
	for id, ks := range plan.Standbys {
		for _, k := range ks {
			if k.Warmup {
				warmTo[k.Task] = id
			}
		}
	}
	warmOf := func(un unit) string {
		for _, k := range un.tasks {
			if w := warmTo[k]; w != "" {
				return w
			}
		}
		return ""
	}
	load := map[string]int{}
	for _, m := range in.Members {
		load[m.ID] = 0
	}
	for _, un := range c.units {
		if o := owns[un.parts[0]]; o != "" {
			ownedUnits[o]++
		}
	}
	share := len(c.units) / len(in.Members)
	warmups := 0
	for ui, un := range c.units {
		d := plan.Units[ui]
		for _, tp := range un.parts {
			if where[tp] != d.Member {
				c.tb.Fatalf("unit %v: %s/%d on %q, the unit on %s", d.Names, tp.Topic, tp.Partition, where[tp], d.Member)
			}
		}
		counted := d.Member
		if d.Reason == WarmingUp {
			warmups++
			if counted = warmOf(un); counted == "" {
				c.tb.Fatalf("unit %v warming up without a warm-up", d.Names)
			}
		}
		load[counted]++
		if o := owns[un.parts[0]]; o != "" && o != d.Member && ownedUnits[o] <= share && d.Reason != WarmingUp {
			c.tb.Fatalf("unit %v left %s, which owned %d units, share %d, for %s (%s)", d.Names, o, ownedUnits[o], share, d.Member, d.Reason)
		}
		stateful := false
		for _, k := range un.tasks {
			stateful = stateful || len(c.shape(k.Pipeline).Stores) > 0
		}
		want := 0
		if stateful {
			want = max(min(in.Standbys, len(in.Members)-1), 0)
		}
		// A warm-up is a standby beyond those, unless it is one of them.
		var standbys []string
		for _, s := range d.Standbys {
			if d.Reason == WarmingUp && warmOf(un) == s && len(d.Standbys) > want {
				continue
			}
			standbys = append(standbys, s)
		}
		if len(standbys) != want {
			c.tb.Fatalf("unit %v has standbys %v, want %d", d.Names, standbys, want)
		}
		seen := map[string]bool{d.Member: true}
		used := map[string]bool{rack[d.Member]: true}
		for _, s := range standbys {
			if seen[s] {
				c.tb.Fatalf("unit %v: a second copy on %s (active %s, standbys %v)", d.Names, s, d.Member, standbys)
			}
			seen[s] = true
			used[rack[s]] = true
		}
		if len(used) < min(len(standbys)+1, len(racks)) {
			c.tb.Fatalf("unit %v: active %s and standbys %v on %d racks, of %d", d.Names, d.Member, standbys, len(used), len(racks))
		}
	}
	lo, hi := len(c.units), 0
	for _, n := range load {
		lo, hi = min(lo, n), max(hi, n)
	}
	if hi-lo > 1 {
		c.tb.Fatalf("loads from %d to %d", lo, hi)
	}
	if warmups != plan.Warmups || warmups > max(in.MaxWarmups, 0) {
		c.tb.Fatalf("%d units warming up, plan says %d, max %d", warmups, plan.Warmups, in.MaxWarmups)
	}
}

// maxMoves is the most moves the balancer chose for one task with stores
// (stateful) or without.
func (c *cluster) maxMoves(stateful bool) (Task, int) {
	var worst Task
	n := 0
	for k, m := range c.moves {
		if (len(c.shape(k.Pipeline).Stores) > 0) != stateful {
			continue
		}
		if m > n || (m == n && k.String() < worst.String()) {
			worst, n = k, m
		}
	}
	return worst, n
}

// assignment renders who runs which task.
func (c *cluster) assignment() string {
	s := ""
	for _, un := range c.units {
		for _, k := range un.tasks {
			s += k.String() + "@" + c.runner[k] + " "
		}
	}
	return s
}
