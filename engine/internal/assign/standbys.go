package assign

import "slices"

// standbys picks, for every unit with stores, up to Input.Standbys members
// to keep standby copies of its tasks: never the unit's active member, a
// member at most once per unit. When members set a rack, a member on a
// rack that holds neither the active nor an earlier standby of the unit
// goes first, so that one rack's failure does not take every copy. Then
// members below their share of all tasks (actives and standbys over
// members, rounded up) go before those at it, so that one member whose old
// copies lag least does not end up with every standby; then the members
// whose copy lags least (a member keeps the standbys it has, sticky), then
// the least loaded, then the members after the active one in member
// order, wrapping around. It returns the chosen members per unit.
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
	for u, ok := range g.stateful {
		if !ok {
			continue // a stateless task has nothing to copy
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
			// Of the eligible members but the active one and those
			// chosen, the least by (rack used, at share, lag, total,
			// distance from the active member round the member order):
			// ties go round from the active member, so that the copies
			// of neighbouring units land on different members.
			best := -1
			var bRack, bShare bool
			var bLag int64
			for _, i := range g.eligible[u] {
				if i == act || slices.Contains(out[u], i) {
					continue
				}
				iRack := g.rack[i] >= 0 && rackUsed[g.rack[i]]
				iShare := total[i] >= share
				if best >= 0 {
					if c := compareBool(iRack, bRack); c != 0 {
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
					} else if total[i] != total[best] {
						if total[i] > total[best] {
							continue
						}
					} else if (i-act+m)%m > (best-act+m)%m {
						continue
					}
				}
				best, bRack, bShare, bLag = i, iRack, iShare, lag[i]
			}
			out[u] = append(out[u], best)
			total[best]++
			if r := g.rack[best]; r >= 0 {
				rackUsed[r] = true
			}
		}
	}
	g.rebalanceStandbys(out, assignedTo, total, share)
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
// members that can take a standby, the one whose copy lags least does.
func (g *group) rebalanceStandbys(out [][]int, assignedTo []int, total []int, share int) {
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
				to := -1
				var toLag int64
				for _, y := range g.eligible[u] {
					if total[y] >= share || y == assignedTo[u] || slices.Contains(out[u], y) {
						continue
					}
					if taken(u, y, x) && !taken(u, x, x) {
						continue // a move onto a rack with a copy from one without
					}
					if l := g.lag(u, y); to < 0 || l < toLag || (l == toLag && total[y] < total[to]) {
						to, toLag = y, l
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
