package assign

import (
	"cmp"
	"slices"
)

func hasStores(shapes []Pipeline, pipeline string) bool {
	for _, s := range shapes {
		if s.Name == pipeline {
			return len(s.Stores) > 0
		}
	}
	return false
}

func readsTopic(shapes []Pipeline, pipeline, topic string) bool {
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

// lags returns, for every unit and member, the changelog records the member
// would restore to run the unit's tasks, and whether its copy saves any of
// them. A member without a copy of a store restores the store's whole
// changelog; one reporting an offset past the end holds a store of another
// changelog (a recreated topic) and is treated the same.
func lags(in Input, members []Member, units []unit) (lag [][]int64, useful [][]bool) {
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
func owners(members []Member, units []unit, eligible [][]int) (owner, claimed []int) {
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
