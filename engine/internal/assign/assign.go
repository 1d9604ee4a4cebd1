package assign

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// unit is the input partitions that go to one member together.
type unit struct {
	parts []TopicPartition
	tasks []Task
}

// Assign assigns units of input partitions to members: sticky, then
// lag-aware, then by load, with every member within one unit of the
// others (unless subscriptions differ so much that no member with room
// may take a unit). It is a pure function of in.
func Assign(in Input) Plan {
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
	for _, u := range buildUnits(in.Partitions, in.Pipelines) {
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
				if readsTopic(in.Pipelines, k.Pipeline, tp.Topic) {
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
			stateful[u] = stateful[u] || hasStores(in.Pipelines, k.Pipeline)
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

	standbyOf := assignStandbys(in, stateful, eligible, assignedTo, lag, load)
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
				if hasStores(in.Pipelines, k.Pipeline) {
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
