package assign

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// unit is the input partitions that go to one member together.

// Assign assigns units of input partitions to members: sticky, then
// lag-aware, then by load, with every member within one unit of the
// others (unless subscriptions differ so much that no member with room
// may take a unit). It is a pure function of in.
func assignRef(in Input) Plan {
	members := slices.Clone(in.Members)
	slices.SortFunc(members, func(a, b Member) int {
		// kgo's order: static members first, by instance_id, then by id.
		if (a.Instance != "") != (b.Instance != "") {
			if a.Instance != "" {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.ID, b.ID))
	})
	in.Members = members
	plan := Plan{Members: map[string]map[string][]int32{}}
	for _, m := range members {
		plan.Members[m.ID] = map[string][]int32{}
	}
	if len(members) == 0 {
		return plan
	}
	subscribed := make([]map[string]bool, len(members))
	for i, m := range members {
		subscribed[i] = map[string]bool{}
		for _, t := range m.Topics {
			subscribed[i][t] = true
		}
	}
	eligibleFor := func(parts []TopicPartition) []int {
		var el []int
		for i := range members {
			ok := true
			for _, tp := range parts {
				ok = ok && subscribed[i][tp.Topic]
			}
			if ok {
				el = append(el, i)
			}
		}
		return el
	}

	var units []unit
	var eligible [][]int
	for _, u := range buildUnitsRef(in.Partitions, in.Pipelines) {
		if el := eligibleFor(u.parts); len(el) > 0 {
			units, eligible = append(units, u), append(eligible, el)
			continue
		}
		// No member reads all of the unit's topics (members with different
		// pipelines): its partitions go one by one to members that read
		// them.
		for _, tp := range u.parts {
			el := eligibleFor([]TopicPartition{tp})
			if len(el) == 0 {
				continue
			}
			one := unit{parts: []TopicPartition{tp}}
			for _, k := range u.tasks {
				if readsTopicRef(in.Pipelines, k.Pipeline, tp.Topic) {
					one.tasks = append(one.tasks, k)
				}
			}
			units, eligible = append(units, one), append(eligible, el)
		}
	}

	lag, useful := lagsRef(in, members, units)
	owner, claimed := ownersRef(members, units, eligible)

	n, m := len(units), len(members)
	minLoad, extra := n/m, n%m
	load := make([]int, m)
	assignedTo := make([]int, n)
	reasons := make([]Reason, n)
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
			assignedTo[u], reasons[u] = i, Kept
			load[i]++
		}
	}

	// The rest go one at a time: of every unit and member with room, the
	// pair with the least lag, then the least loaded member, then the
	// first unit and member.
	hasRoom := func(i int) bool { return load[i] < minLoad || (load[i] == minLoad && extra > 0) }
	give := func(u, i int, r Reason) {
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
		r := LeastLoaded
		if useful[bu][bi] {
			r = CaughtUp
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
		assignedTo[u], reasons[u] = best, Overloaded
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
			stateful[u] = stateful[u] || hasStoresRef(in.Pipelines, k.Pipeline)
		}
	}
	warmupOf := make([]int, n)
	for u := range warmupOf {
		warmupOf[u] = -1
	}
	for u := range units {
		to := assignedTo[u]
		if !stateful[u] || plan.Warmups >= in.MaxWarmups || owner[u] == to || lag[u][to] <= in.AcceptableLag {
			continue
		}
		from := -1
		if o := owner[u]; o >= 0 && slices.Contains(eligible[u], o) && lag[u][o] <= in.AcceptableLag {
			from = o
		} else {
			for _, i := range eligible[u] {
				if i != to && lag[u][i] <= in.AcceptableLag &&
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
		assignedTo[u], reasons[u], warmupOf[u] = from, WarmingUp, to
		plan.Warmups++
	}

	standbyOf := assignStandbysRef(in, stateful, eligible, assignedTo, lag, load)
	for u, w := range warmupOf {
		if w >= 0 && !slices.Contains(standbyOf[u], w) {
			standbyOf[u] = append(standbyOf[u], w)
		}
	}
	plan.Standbys = map[string][]Standby{}
	for u, un := range units {
		i := assignedTo[u]
		d := Decision{Parts: un.parts, Member: members[i].ID, Reason: reasons[u], Lag: lag[u][i]}
		for _, s := range standbyOf[u] {
			d.Standbys = append(d.Standbys, members[s].ID)
			for _, k := range un.tasks {
				if hasStoresRef(in.Pipelines, k.Pipeline) {
					plan.Standbys[members[s].ID] = append(plan.Standbys[members[s].ID], Standby{k, warmupOf[u] == s})
				}
			}
		}
		if owner[u] >= 0 {
			d.Owner = members[owner[u]].ID
		}
		for _, k := range un.tasks {
			d.Names = append(d.Names, k.String())
		}
		if len(un.tasks) == 0 {
			for _, tp := range un.parts {
				d.Names = append(d.Names, tp.Topic+"/"+strconv.Itoa(int(tp.Partition)))
			}
		}
		plan.Units = append(plan.Units, d)
		for _, tp := range un.parts {
			mp := plan.Members[members[i].ID]
			mp[tp.Topic] = append(mp[tp.Topic], tp.Partition)
		}
	}
	for _, mp := range plan.Members {
		for _, ps := range mp {
			slices.Sort(ps)
		}
	}
	return plan
}

// assignStandbys picks, for every unit with stores, up to in.Standbys
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
func assignStandbysRef(in Input, stateful []bool, eligible [][]int, assignedTo []int, lag [][]int64, load []int) [][]int {
	out := make([][]int, len(stateful))
	if in.Standbys <= 0 {
		return out
	}
	tasks := 0
	for _, l := range load {
		tasks += l
	}
	for u, ok := range stateful {
		if ok {
			tasks += min(in.Standbys, max(len(eligible[u])-1, 0))
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
		if r := in.Members[act].Rack; r != "" {
			racks[r] = true
		}
		// rackUsed is 1 for a member on a rack that already holds a copy
		// of the unit, 0 otherwise (and for members without a rack).
		rackUsed := func(i int) int {
			if r := in.Members[i].Rack; r != "" && racks[r] {
				return 1
			}
			return 0
		}
		for range min(in.Standbys, len(cands)) {
			best := slices.MinFunc(cands, func(a, b int) int {
				return cmp.Or(cmp.Compare(rackUsed(a), rackUsed(b)), cmp.Compare(atShare(a), atShare(b)),
					cmp.Compare(lag[u][a], lag[u][b]), cmp.Compare(total[a], total[b]), cmp.Compare((a-act+m)%m, (b-act+m)%m))
			})
			out[u] = append(out[u], best)
			total[best]++
			if r := in.Members[best].Rack; r != "" {
				racks[r] = true
			}
			cands = slices.DeleteFunc(cands, func(i int) bool { return i == best })
		}
	}
	rebalanceStandbysRef(in, out, eligible, assignedTo, lag, total, share)
	return out
}

// rebalanceStandbys moves standbys from members above share to members
// below it, while one can take one: a member that reads the unit, is not
// its active, holds no copy of it yet, and whose rack is no worse for the
// unit than the one it replaces. The greedy pass of assignStandbys fills
// the members it meets first; the standbys of the tasks active on a member
// can only go elsewhere, so that member may be left with too few. Of the
// members that can take a standby, the one whose copy lags least does.
func rebalanceStandbysRef(in Input, out [][]int, eligible [][]int, assignedTo []int, lag [][]int64, total []int, share int) {
	// taken reports whether member i's rack holds a copy of unit u other
	// than the one on member skip.
	taken := func(u, i, skip int) bool {
		r := in.Members[i].Rack
		if r == "" {
			return false
		}
		if in.Members[assignedTo[u]].Rack == r {
			return true
		}
		for _, j := range out[u] {
			if j != skip && in.Members[j].Rack == r {
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

func hasStoresRef(shapes []Pipeline, pipeline string) bool {
	for _, s := range shapes {
		if s.Name == pipeline {
			return len(s.Stores) > 0
		}
	}
	return false
}

func readsTopicRef(shapes []Pipeline, pipeline, topic string) bool {
	for _, s := range shapes {
		if s.Name == pipeline {
			return slices.Contains(s.Inputs, topic)
		}
	}
	return false
}

// buildUnits groups the partitions of topics into units: topics read by
// one pipeline, or linked through pipelines sharing topics, form a
// component, and partition p of every topic of a component is one unit.
// Units are sorted by their component's first topic, then partition.
func buildUnitsRef(topics map[string]int32, shapes []Pipeline) []unit {
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

// lags returns, for every unit and member, the changelog records the member
// would restore to run the unit's tasks, and whether its copy saves any of
// them. A member without a copy of a store restores the store's whole
// changelog; one reporting an offset past the end holds a store of another
// changelog (a recreated topic) and is treated the same.
func lagsRef(in Input, members []Member, units []unit) (lag [][]int64, useful [][]bool) {
	shape := map[string]Pipeline{}
	for _, s := range in.Pipelines {
		shape[s.Name] = s
	}
	lag = make([][]int64, len(units))
	useful = make([][]bool, len(units))
	for u, un := range units {
		lag[u] = make([]int64, len(members))
		useful[u] = make([]bool, len(members))
		for _, k := range un.tasks {
			s := shape[k.Pipeline]
			for si, store := range s.Stores {
				end, ok := in.Ends[TopicPartition{s.Changelogs[si], k.Partition}]
				if !ok {
					end = 0
					for _, m := range members {
						end = max(end, m.Stores[k][store])
					}
				}
				for i, m := range members {
					off, ok := m.Stores[k][store]
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
func ownersRef(members []Member, units []unit, eligible [][]int) (owner, claimed []int) {
	maxGen := map[TopicPartition]int32{}
	for _, m := range members {
		for t, ps := range m.Owned {
			for _, p := range ps {
				tp := TopicPartition{t, p}
				if g, ok := maxGen[tp]; !ok || m.Generation > g {
					maxGen[tp] = m.Generation
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
				if slices.Contains(m.Owned[tp.Topic], tp.Partition) && m.Generation >= maxGen[tp] {
					n++
				}
			}
			if n > best || (n == best && n > 0 && m.Generation > members[owner[u]].Generation) {
				owner[u], best = i, n
			}
		}
		claimed[u] = best
	}
	return owner, claimed
}
