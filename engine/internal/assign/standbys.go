package assign

import "slices"

// standbys picks, for every unit with stores, up to Input.Standbys members
// to keep standby copies of its tasks: never the unit's active member, a
// member at most once per unit. When members set a rack, a member on a
// rack that holds neither the active nor an earlier standby of the unit
// goes first, so that one rack's failure does not take every copy. Then a
// member that holds no standby of another unit active on the same member
// as this one goes first (unless it has no useful copy and only members
// holding such a standby have one: a copy is sticky): when a
// member leaves, its units fail over to as many members, each with a
// caught-up copy and room for one unit more, not to one member holding
// all their copies (which could take one, and would warm up or restore
// the rest elsewhere). Then members below their share of all tasks
// (actives and standbys over members, rounded up) go before those at it,
// so that one member whose old copies lag least does not end up with
// every standby; then the members whose copy lags least (a member keeps
// the standbys it has, sticky), then those holding the fewest standbys of
// units active with this one, then the least loaded, then the members
// after the active one in member order, wrapping around. It returns the
// chosen members per unit.
func (g *group) standbys(assignedTo []int, load []int) [][]int {
	out := make([][]int, len(g.units))
	if g.in.Standbys <= 0 {
		return out
	}
	tasks := 0
	for _, l := range load {
		tasks += l
	}
	for u, ok := range g.stateful {
		if ok {
			tasks += min(g.in.Standbys, max(len(g.eligible[u])-1, 0))
		}
	}
	m := len(load)
	share := (tasks + m - 1) / max(m, 1)
	total := slices.Clone(load)
	// lag is, while a unit is picked for, every member's lag for it.
	lag := make([]int64, m)
	// rackUsed is, while a unit is picked for, whether a rack holds a
	// copy of it.
	rackUsed := make([]bool, g.racks)
	// pairs counts, per active member and member, the standbys the
	// member holds of units active on the active member (m × m: a group
	// has some hundreds of members at most).
	pairs := make([]int32, m*m)
	// The units of which a member other than the active one has a copy
	// pick first: where they stay is mostly settled by lag, and the
	// units picking after them, free to go anywhere, then see those
	// copies in pairs.
	order := make([]int, 0, len(g.units))
	for u, ok := range g.stateful {
		if ok && slices.ContainsFunc(g.copies[u], func(c copyOf) bool { return c.member != assignedTo[u] }) {
			order = append(order, u)
		}
	}
	for u, ok := range g.stateful {
		if ok && !slices.ContainsFunc(g.copies[u], func(c copyOf) bool { return c.member != assignedTo[u] }) {
			order = append(order, u) // a stateless task has nothing to copy
		}
	}
	// Until a unit picks, pairs counts its likely standby: the member
	// with its best copy, so that the units before it avoid that member.
	likely := make([]int, len(g.units))
	for _, u := range order {
		likely[u] = -1
		for _, c := range g.copies[u] {
			if c.member != assignedTo[u] && (likely[u] < 0 || c.lag < g.lag(u, likely[u])) {
				likely[u] = c.member
			}
		}
		if likely[u] >= 0 {
			pairs[assignedTo[u]*m+likely[u]]++
		}
	}
	for _, u := range order {
		if likely[u] >= 0 {
			pairs[assignedTo[u]*m+likely[u]]--
		}
		for _, i := range g.eligible[u] {
			lag[i] = g.full[u]
		}
		for _, c := range g.copies[u] {
			lag[c.member] = c.lag
		}
		clear(rackUsed)
		act := assignedTo[u]
		if r := g.rack[act]; r >= 0 {
			rackUsed[r] = true
		}
		for range min(g.in.Standbys, len(g.eligible[u])-1) {
			// Whether a member with a useful copy holds no standby of a
			// unit active with this one: then a member that holds one
			// goes after it, copy or not.
			freeCopy := slices.ContainsFunc(g.copies[u], func(c copyOf) bool {
				return c.member != act && pairs[act*m+c.member] == 0 && !slices.Contains(out[u], c.member)
			})
			// Of the eligible members but the active one and those
			// chosen, the least by (rack used, at share, lag, total,
			// distance from the active member round the member order):
			// ties go round from the active member, so that the copies
			// of neighbouring units land on different members.
			best := -1
			var bRack, bPair, bShare bool
			var bLag int64
			for _, i := range g.eligible[u] {
				if i == act || slices.Contains(out[u], i) {
					continue
				}
				iRack := g.rack[i] >= 0 && rackUsed[g.rack[i]]
				iPair := pairs[act*m+i] > 0 && (freeCopy || lag[i] == g.full[u])
				iShare := total[i] >= share
				if best >= 0 {
					if c := compareBool(iRack, bRack); c != 0 {
						if c > 0 {
							continue
						}
					} else if c := compareBool(iPair, bPair); c != 0 {
						if c > 0 {
							continue
						}
					} else if c := compareBool(iShare, bShare); c != 0 {
						if c > 0 {
							continue
						}
					} else if lag[i] != bLag {
						if lag[i] > bLag {
							continue
						}
					} else if p, bp := pairs[act*m+i], pairs[act*m+best]; p != bp {
						if p > bp {
							continue
						}
					} else if total[i] != total[best] {
						if total[i] > total[best] {
							continue
						}
					} else if (i-act+m)%m > (best-act+m)%m {
						continue
					}
				}
				best, bRack, bPair, bShare, bLag = i, iRack, iPair, iShare, lag[i]
			}
			out[u] = append(out[u], best)
			total[best]++
			pairs[act*m+best]++
			if r := g.rack[best]; r >= 0 {
				rackUsed[r] = true
			}
		}
	}
	g.rebalanceStandbys(out, assignedTo, total, share, pairs)
	return out
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

// rebalanceStandbys moves standbys from members above share to members
// below it, while one can take one: a member that reads the unit, is not
// its active, holds no copy of it yet, and whose rack is no worse for the
// unit than the one it replaces. The greedy pass of standbys fills the
// members it meets first; the standbys of the tasks active on a member can
// only go elsewhere, so that member may be left with too few. Of the
// members that can take a standby, the one whose copy lags least does,
// then the one holding the fewest standbys of units active where the
// unit is (pairs, as in standbys).
func (g *group) rebalanceStandbys(out [][]int, assignedTo []int, total []int, share int, pairs []int32) {
	m := len(total)
	// taken reports whether member i's rack holds a copy of unit u other
	// than the one on member skip.
	taken := func(u, i, skip int) bool {
		r := g.rack[i]
		if r < 0 {
			return false
		}
		if g.rack[assignedTo[u]] == r {
			return true
		}
		for _, j := range out[u] {
			if j != skip && g.rack[j] == r {
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
				to, act := -1, assignedTo[u]
				var toLag int64
				for _, y := range g.eligible[u] {
					if total[y] >= share || y == act || slices.Contains(out[u], y) {
						continue
					}
					if taken(u, y, x) && !taken(u, x, x) {
						continue // a move onto a rack with a copy from one without
					}
					if pairs[act*m+y] > 0 && pairs[act*m+x] == 1 {
						continue // onto a member with a standby of another unit active with u, from one without
					}
					l := g.lag(u, y)
					if to < 0 || l < toLag || l == toLag && (pairs[act*m+y] < pairs[act*m+to] ||
						pairs[act*m+y] == pairs[act*m+to] && total[y] < total[to]) {
						to, toLag = y, l
					}
				}
				if to < 0 {
					continue
				}
				out[u][k] = to
				total[x]--
				total[to]++
				pairs[act*m+x]--
				pairs[act*m+to]++
				moved = true
			}
		}
	}
}
