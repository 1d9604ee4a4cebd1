package assign

import (
	"cmp"
	"slices"
)

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
func assignStandbys(in Input, stateful []bool, eligible [][]int, assignedTo []int, lag [][]int64, load []int) [][]int {
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
func rebalanceStandbys(in Input, out [][]int, eligible [][]int, assignedTo []int, lag [][]int64, total []int, share int) {
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
