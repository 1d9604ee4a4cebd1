package assign

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// buildUnits groups the partitions of topics into units: topics read by
// one pipeline, or linked through pipelines sharing topics, form a
// component, and partition p of every topic of a component is one unit.
// Units are sorted by their component's first topic, then partition.
func buildUnits(topics map[string]int32, shapes []Pipeline) []unit {
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
		for _, t := range s.Inputs {
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
					u.parts = append(u.parts, TopicPartition{t, p})
				}
			}
			for _, s := range shapes {
				for _, t := range s.Inputs {
					if _, ok := topics[t]; ok && find(t) == r && p < topics[t] {
						u.tasks = append(u.tasks, Task{s.Name, p})
						break
					}
				}
			}
			slices.SortFunc(u.tasks, func(a, b Task) int { return cmp.Compare(a.Pipeline, b.Pipeline) })
			units = append(units, u)
		}
	}
	return units
}

// unit is the input partitions that go to one member together.
type unit struct {
	parts []TopicPartition
	tasks []Task
}

// copyOf is a member's useful copy of a unit's stores: one that saves
// restoring some of the changelog records.
type copyOf struct {
	member int
	lag    int64 // the records it still has to restore
}

// group is what one Assign decides over: the members (sorted) and the
// units, by index, and for every unit the members that may take it and
// the lags of their copies.
type group struct {
	in      Input
	members []Member
	rack    []int // per member, an index of its rack, -1 for none
	racks   int   // the number of racks
	units   []unit
	// eligible are, per unit, the members reading all its topics, in
	// member order. Units of the same topics share one slice: a class.
	eligible [][]int
	class    []int    // per unit, its class
	inClass  [][]bool // per class, per member: in it
	// full is, per unit, the lag of a member without a useful copy: every
	// record of its tasks' changelogs.
	full []int64
	// copies are, per unit, the eligible members with a useful copy, in
	// member order; any other member's lag is full.
	copies   [][]copyOf
	stateful []bool // per unit: a task of it has stores
	shape    map[string]Pipeline
}

// lag is the changelog records member i restores to run unit u.
func (g *group) lag(u, i int) int64 {
	for _, c := range g.copies[u] {
		if c.member == i {
			return c.lag
		}
		if c.member > i {
			break
		}
	}
	return g.full[u]
}

// useful reports whether member i's copy of unit u saves any restoring.
func (g *group) useful(u, i int) bool {
	for _, c := range g.copies[u] {
		if c.member == i {
			return true
		}
	}
	return false
}

// newGroup sorts the members, builds the units of in and their eligible
// members, and computes lags. A unit no member reads all the topics of
// (members with different pipelines) is split: its partitions go one by
// one to members that read them.
func newGroup(in Input) *group {
	g := &group{in: in, members: slices.Clone(in.Members), shape: map[string]Pipeline{}}
	slices.SortFunc(g.members, func(a, b Member) int {
		// kgo's order: static members first, by instance_id, then by id.
		if (a.Instance != "") != (b.Instance != "") {
			if a.Instance != "" {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.ID, b.ID))
	})
	g.in.Members = g.members
	for _, s := range in.Pipelines {
		if _, ok := g.shape[s.Name]; !ok {
			g.shape[s.Name] = s // the first of a name, as a linear search finds it
		}
	}
	rackIndex := map[string]int{}
	g.rack = make([]int, len(g.members))
	for i, m := range g.members {
		g.rack[i] = -1
		if m.Rack == "" {
			continue
		}
		r, ok := rackIndex[m.Rack]
		if !ok {
			r = len(rackIndex)
			rackIndex[m.Rack] = r
		}
		g.rack[i] = r
	}
	g.racks = len(rackIndex)

	subscribed := make([]map[string]bool, len(g.members))
	for i, m := range g.members {
		subscribed[i] = map[string]bool{}
		for _, t := range m.Topics {
			subscribed[i][t] = true
		}
	}
	classOf := map[string]int{} // sorted topics, NUL-joined -> class
	classFor := func(parts []TopicPartition) int {
		var topics []string
		for _, tp := range parts {
			topics = append(topics, tp.Topic)
		}
		slices.Sort(topics)
		topics = slices.Compact(topics)
		key := strings.Join(topics, "\x00")
		if c, ok := classOf[key]; ok {
			return c
		}
		var el []int
		in := make([]bool, len(g.members))
		for i := range g.members {
			ok := true
			for _, t := range topics {
				ok = ok && subscribed[i][t]
			}
			if ok {
				el = append(el, i)
				in[i] = true
			}
		}
		c := len(g.inClass)
		classOf[key] = c
		g.inClass = append(g.inClass, in)
		g.eligible = append(g.eligible, el) // by class for now
		return c
	}
	readsTopic := func(pipeline, topic string) bool {
		s, ok := g.shape[pipeline]
		return ok && slices.Contains(s.Inputs, topic)
	}
	for _, u := range buildUnits(in.Partitions, in.Pipelines) {
		if c := classFor(u.parts); len(g.eligible[c]) > 0 {
			g.units, g.class = append(g.units, u), append(g.class, c)
			continue
		}
		for _, tp := range u.parts {
			c := classFor([]TopicPartition{tp})
			if len(g.eligible[c]) == 0 {
				continue
			}
			one := unit{parts: []TopicPartition{tp}}
			for _, k := range u.tasks {
				if readsTopic(k.Pipeline, tp.Topic) {
					one.tasks = append(one.tasks, k)
				}
			}
			g.units, g.class = append(g.units, one), append(g.class, c)
		}
	}
	byClass := g.eligible
	g.eligible = make([][]int, len(g.units))
	g.stateful = make([]bool, len(g.units))
	for u, c := range g.class {
		g.eligible[u] = byClass[c]
		for _, k := range g.units[u].tasks {
			g.stateful[u] = g.stateful[u] || len(g.shape[k.Pipeline].Stores) > 0
		}
	}
	g.lags()
	return g
}

// lags fills full and copies. A member without a copy of a store restores
// the store's whole changelog; one reporting an offset past the end holds
// a store of another changelog (a recreated topic) and is treated the
// same. A changelog partition missing from in.Ends is taken to end at the
// highest offset any member reported for it.
func (g *group) lags() {
	unitsOf := map[Task][]int{}
	for u, un := range g.units {
		for _, k := range un.tasks {
			if len(g.shape[k.Pipeline].Stores) > 0 {
				unitsOf[k] = append(unitsOf[k], u)
			}
		}
	}
	ends := make(map[Task][]int64, len(unitsOf))
	for k := range unitsOf {
		s := g.shape[k.Pipeline]
		e := make([]int64, len(s.Stores))
		for si := range s.Stores {
			e[si] = -1 // not listed: from the members below
			if end, ok := g.in.Ends[TopicPartition{s.Changelogs[si], k.Partition}]; ok {
				e[si] = end
			}
		}
		ends[k] = e
	}
	for _, m := range g.members {
		for k, offs := range m.Stores {
			e, ok := ends[k]
			if !ok {
				continue
			}
			s := g.shape[k.Pipeline]
			for si, store := range s.Stores {
				if _, listed := g.in.Ends[TopicPartition{s.Changelogs[si], k.Partition}]; !listed {
					e[si] = max(e[si], offs[store], 0)
				}
			}
		}
	}
	g.full = make([]int64, len(g.units))
	for u, un := range g.units {
		for _, k := range un.tasks {
			for _, end := range ends[k] {
				g.full[u] += max(end, 0)
			}
		}
	}
	g.copies = make([][]copyOf, len(g.units))
	for i, m := range g.members {
		for k, offs := range m.Stores {
			e, ok := ends[k]
			if !ok {
				continue
			}
			var saved int64
			for si, store := range g.shape[k.Pipeline].Stores {
				if off, ok := offs[store]; ok && off >= 0 && off <= max(e[si], 0) {
					saved += off
				}
			}
			if saved == 0 {
				continue
			}
			for _, u := range unitsOf[k] {
				if !g.inClass[g.class[u]][i] {
					continue
				}
				cs := g.copies[u]
				if n := len(cs); n > 0 && cs[n-1].member == i {
					cs[n-1].lag -= saved
					continue
				}
				g.copies[u] = append(cs, copyOf{member: i, lag: g.full[u] - saved})
			}
		}
	}
}

// owners returns, for every unit, the index of the member consuming it now,
// or -1, how many of the unit's partitions that member owns, and the
// latest generation the member acquired one of them in. Of
// members claiming a partition, only those at the highest generation count
// (a member that missed rebalances may claim partitions moved since); of a
// unit split between members, the one with most of its partitions owns it,
// then the one of the highest generation, then the first.
func (g *group) owners() (owner, claimed []int, acquired []int32) {
	maxGen := map[TopicPartition]int32{}
	for _, m := range g.members {
		for t, ps := range m.Owned {
			for _, p := range ps {
				tp := TopicPartition{t, p}
				if gen, ok := maxGen[tp]; !ok || m.Generation > gen {
					maxGen[tp] = m.Generation
				}
			}
		}
	}
	claims := map[TopicPartition][]int{}
	for i, m := range g.members {
		for t, ps := range m.Owned {
			for _, p := range ps {
				tp := TopicPartition{t, p}
				if c := claims[tp]; m.Generation >= maxGen[tp] && (len(c) == 0 || c[len(c)-1] != i) {
					claims[tp] = append(c, i)
				}
			}
		}
	}
	owner, claimed, acquired = make([]int, len(g.units)), make([]int, len(g.units)), make([]int32, len(g.units))
	count := make([]int, len(g.members))
	var touched []int
	for u, un := range g.units {
		owner[u] = -1
		touched = touched[:0]
		for _, tp := range un.parts {
			for _, i := range claims[tp] {
				if !g.inClass[g.class[u]][i] {
					continue
				}
				if count[i] == 0 {
					touched = append(touched, i)
				}
				count[i]++
			}
		}
		best := 0
		for _, i := range touched {
			n := count[i]
			if n > best || (n == best && (g.members[i].Generation > g.members[owner[u]].Generation ||
				g.members[i].Generation == g.members[owner[u]].Generation && i < owner[u])) {
				owner[u], best = i, n
			}
			count[i] = 0
		}
		claimed[u] = best
		if o := owner[u]; o >= 0 && len(g.members[o].Acquired) > 0 {
			acquired[u] = math.MinInt32
			for _, tp := range un.parts {
				if gen, ok := g.members[o].Acquired[tp]; ok {
					acquired[u] = max(acquired[u], gen)
				}
			}
		}
	}
	return owner, claimed, acquired
}
