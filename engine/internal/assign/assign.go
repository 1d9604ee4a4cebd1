package assign

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// Assign assigns units of input partitions to members: sticky, then
// lag-aware, then by load, with every member within one unit of the
// others (unless subscriptions differ so much that no member with room
// may take a unit, or a unit waits for a warm-up); then warm-ups and
// standbys. It is a pure function of in.
//
// It takes time about linear in units × members (10,000 tasks over 200
// members: 0.1 to 0.2 s on 2 shared cores; BenchmarkAssign): every unit's
// lag is kept only for the members with a useful copy, and the members
// without one are told apart by load and order alone.
func Assign(in Input) Plan {
	g := newGroup(in)
	plan := Plan{Members: map[string]map[string][]int32{}}
	for _, m := range g.members {
		plan.Members[m.ID] = map[string][]int32{}
	}
	if len(g.members) == 0 {
		return plan
	}
	owner, claimed, acquired := g.owners()
	a := g.actives(owner, claimed, acquired)
	warmupOf := g.warmups(a, owner, &plan)
	standbyOf := g.standbys(a.assignedTo, a.load)
	for u, w := range warmupOf {
		if w >= 0 && !slices.Contains(standbyOf[u], w) {
			standbyOf[u] = append(standbyOf[u], w)
		}
	}

	members := g.members
	plan.Standbys = map[string][]Standby{}
	for u, un := range g.units {
		i := a.assignedTo[u]
		d := Decision{Parts: un.parts, Member: members[i].ID, Reason: a.reasons[u], Lag: g.lag(u, i)}
		for _, s := range standbyOf[u] {
			d.Standbys = append(d.Standbys, members[s].ID)
			for _, k := range un.tasks {
				if len(g.shape[k.Pipeline].Stores) > 0 {
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

// actives is where the units run: per unit its member and why, per member
// its count of units.
type actives struct {
	assignedTo []int
	reasons    []Reason
	load       []int
}

// actives assigns every unit to one member. Owners keep their units up to
// their share; the rest go one at a time to the member with room whose
// copy lags least; what no member with room may take goes to the least
// loaded member that reads it.
func (g *group) actives(owner, claimed []int, acquired []int32) actives {
	n, m := len(g.units), len(g.members)
	minLoad, extra := n/m, n%m
	a := actives{assignedTo: make([]int, n), reasons: make([]Reason, n), load: make([]int, m)}
	load := a.load
	for u := range a.assignedTo {
		a.assignedTo[u] = -1
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
	// receivers counts, per class, its members that receive.
	receivers := make([]int, len(g.inClass))
	for c, in := range g.inClass {
		for r, ok := range in {
			if ok && receives(r) {
				receivers[c]++
			}
		}
	}
	alt := make([]int64, n)
	for i, us := range owned {
		if len(us) > capOf[i] {
			// Give up first the units some receiver could take over
			// within the acceptable lag (stateless ones, and those a
			// receiver has a caught-up copy of), the ones taken last
			// first: a unit taken over from a member that left goes back
			// when that member returns (its copy is caught up, or the
			// unit has no stores), and the units the member had before
			// stay. Then the units some receiver has the best copy of.
			// Keep those nobody else could take over cheaply, then those
			// of which the member owns the most partitions (a unit the
			// old balancer split), then the first ones. Member i, above
			// its share, receives nothing.
			for _, u := range us {
				alt[u] = math.MaxInt64
				withCopy := 0
				for _, c := range g.copies[u] {
					if c.member != i && receives(c.member) {
						alt[u] = min(alt[u], c.lag)
						withCopy++
					}
				}
				if receivers[g.class[u]] > withCopy {
					alt[u] = min(alt[u], g.full[u])
				}
			}
			cheap := func(u int) bool { return alt[u] <= g.in.AcceptableLag }
			slices.SortStableFunc(us, func(a, b int) int {
				ca, cb := cheap(a), cheap(b)
				c := compareBool(ca, cb)
				if c == 0 && ca {
					c = cmp.Compare(acquired[a], acquired[b])
				}
				return cmp.Or(c, cmp.Compare(alt[b], alt[a]), cmp.Compare(claimed[b], claimed[a]))
			})
			us = us[:capOf[i]]
		}
		for _, u := range us {
			a.assignedTo[u], a.reasons[u] = i, Kept
			load[i]++
		}
	}

	// The rest go one at a time: of every unit and member with room, a
	// pair where the member has a useful copy before one where it has
	// none (a unit without a copy costs the same wherever it goes, so it
	// waits until the copies have found their members: after a member
	// left, its units with stores go to their standbys, whatever else
	// fills the room), then the pair with the least lag, then the least
	// loaded member, then the first unit and member.
	hasRoom := func(i int) bool { return load[i] < minLoad || (load[i] == minLoad && extra > 0) }
	next := g.nextUnits(a.assignedTo)
	for {
		bu, bi := -1, -1
		var bl int64
		var bc bool
		for i := range g.members {
			if !hasRoom(i) {
				continue
			}
			u, l, c := next.best(i)
			if u < 0 {
				continue
			}
			if bu < 0 || (c && !bc) || (c == bc && (l < bl || (l == bl && (load[i] < load[bi] || load[i] == load[bi] && u < bu)))) {
				bu, bi, bl, bc = u, i, l, c
			}
		}
		if bu < 0 {
			break
		}
		r := LeastLoaded
		if g.useful(bu, bi) {
			r = CaughtUp
		}
		if load[bi] == minLoad {
			extra--
		}
		a.assignedTo[bu], a.reasons[bu] = bi, r
		load[bi]++
	}
	// Units no member with room may take go to the least loaded member
	// that reads them.
	for u := range g.units {
		if a.assignedTo[u] >= 0 {
			continue
		}
		best := -1
		for _, i := range g.eligible[u] {
			if best < 0 || load[i] < load[best] || (load[i] == load[best] && g.lag(u, i) < g.lag(u, best)) {
				best = i
			}
		}
		a.assignedTo[u], a.reasons[u] = best, Overloaded
		load[best]++
	}
	return a
}

// nextUnits finds, for a member, the unassigned unit it may take whose
// copy lags least, then the first. It holds, per member, the units it has
// a useful copy of, and per class the units by the lag of no copy; it
// skips what was assigned since, so that finding them all over every
// member takes time about linear in units × members.
type nextUnits struct {
	g          *group
	assignedTo []int // shared with the caller: -1 while unassigned
	// withCopy are, per member, the units it has a useful copy of, by
	// lag, then unit.
	withCopy [][]candidate
	// byFull are, per class, its units by full lag, then unit; at is,
	// per member and class, how far the member has skipped in it.
	byFull  [][]int
	classes [][]int // per member, the classes it is in
	at      [][]int // per member, per entry of classes
	head    []int   // per member, how far it has skipped in withCopy
}

func (g *group) nextUnits(assignedTo []int) *nextUnits {
	m := len(g.members)
	x := &nextUnits{g: g, assignedTo: assignedTo, withCopy: make([][]candidate, m), byFull: make([][]int, len(g.inClass)),
		classes: make([][]int, m), at: make([][]int, m), head: make([]int, m)}
	for u := range g.units {
		if assignedTo[u] >= 0 {
			continue
		}
		x.byFull[g.class[u]] = append(x.byFull[g.class[u]], u)
		for _, c := range g.copies[u] {
			x.withCopy[c.member] = append(x.withCopy[c.member], candidate{unit: u, lag: c.lag})
		}
	}
	for _, us := range x.byFull {
		slices.SortFunc(us, func(a, b int) int { return cmp.Or(cmp.Compare(g.full[a], g.full[b]), cmp.Compare(a, b)) })
	}
	for i, cs := range x.withCopy {
		slices.SortFunc(cs, func(a, b candidate) int { return cmp.Or(cmp.Compare(a.lag, b.lag), cmp.Compare(a.unit, b.unit)) })
		for c, in := range g.inClass {
			if in[i] && len(x.byFull[c]) > 0 {
				x.classes[i] = append(x.classes[i], c)
				x.at[i] = append(x.at[i], 0)
			}
		}
	}
	return x
}

// candidate is a unit a member may take, with the member's lag for it.
type candidate struct {
	unit int
	lag  int64
}

// best returns the unit for member i, its lag there and whether member i
// has a useful copy of it, or -1: the unit of which its copy lags least,
// else the unit with the least full lag.
func (x *nextUnits) best(i int) (int, int64, bool) {
	cs := x.withCopy[i]
	for x.head[i] < len(cs) && x.assignedTo[cs[x.head[i]].unit] >= 0 {
		x.head[i]++
	}
	if x.head[i] < len(cs) {
		return cs[x.head[i]].unit, cs[x.head[i]].lag, true
	}
	bu, bl := -1, int64(0)
	for k, c := range x.classes[i] {
		us := x.byFull[c]
		j := x.at[i][k]
		// Skip the assigned units, and those member i has a copy of
		// (withCopy has them, with their lag).
		for j < len(us) && (x.assignedTo[us[j]] >= 0 || x.g.useful(us[j], i)) {
			j++
		}
		x.at[i][k] = j
		if j < len(us) {
			u, l := us[j], x.g.full[us[j]]
			if bu < 0 || l < bl || (l == bl && u < bu) {
				bu, bl = u, l
			}
		}
	}
	return bu, bl, false
}

// warmups (KIP-441): a unit that would go to a member whose copy lags
// more than AcceptableLag, while another member's copy is within it, goes
// to that member instead, beyond its share: its owner when the owner's
// copy is caught up, else the most caught-up member (after a failure, the
// holder of a standby). The member it should go to gets a warm-up copy: a
// standby. At most MaxWarmups at a time; probing rebalances assign again,
// and the unit moves once the copy has caught up. Nothing stops processing
// while a member fills its stores, and no task restores a changelog that
// another member holds a copy of. It returns, per unit, the member warming
// it up, or -1.
func (g *group) warmups(a actives, owner []int, plan *Plan) []int {
	in := g.in
	warmupOf := make([]int, len(g.units))
	for u := range warmupOf {
		warmupOf[u] = -1
	}
	for u := range g.units {
		to := a.assignedTo[u]
		if !g.stateful[u] || plan.Warmups >= in.MaxWarmups || owner[u] == to || g.lag(u, to) <= in.AcceptableLag {
			continue
		}
		// Only a useful copy can be within the acceptable lag: to's lag,
		// at most the full one, is not.
		from := -1
		if o := owner[u]; o >= 0 && g.lag(u, o) <= in.AcceptableLag {
			from = o
		} else {
			for _, c := range g.copies[u] {
				if i := c.member; i != to && c.lag <= in.AcceptableLag &&
					(from < 0 || c.lag < g.lag(u, from) || (c.lag == g.lag(u, from) && a.load[i] < a.load[from])) {
					from = i
				}
			}
		}
		if from < 0 {
			continue // no copy is caught up: the unit restores where it goes
		}
		a.load[to]--
		a.load[from]++
		a.assignedTo[u], a.reasons[u], warmupOf[u] = from, WarmingUp, to
		plan.Warmups++
	}
	return warmupOf
}
