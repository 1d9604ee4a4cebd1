package engine

import (
	"log/slog"
	"testing"
)

// TestAssignWarmups: member a runs every task with caught-up stores, and b
// joins. b takes its share at once when its copies are within the
// acceptable lag; otherwise a keeps the tasks, at most maxWarmups of them
// beyond its share, and b warms copies of them up as standbys.
func TestAssignWarmups(t *testing.T) {
	counter := pipelineShape{name: "count", inputs: []string{"in"}, stores: []string{"seen"}, changelogs: []string{"app-seen-changelog"}}
	ends := map[topicPartition]int64{}
	for p := range int32(4) {
		ends[topicPartition{"app-seen-changelog", p}] = 1000
	}
	member := func(id, owned string, offset int64) assignMember {
		m := assignMember{id: id, topics: []string{"in"}, generation: 1, owned: owns(owned), stores: map[taskKey]map[string]int64{}}
		if owned == "" {
			m.owned = map[string][]int32{}
		}
		for p := range int32(4) {
			if offset > 0 {
				m.stores[taskKey{"count", p}] = map[string]int64{"seen": offset}
			}
		}
		return m
	}
	a := member("a", "in:0,1,2,3", 1000)
	for _, tc := range []struct {
		name       string
		b          assignMember
		maxWarmups int
		actives    string // member: partitions
		standbys   map[string]string
		warmups    int
	}{
		{
			name: "b fresh, two warm-ups: a keeps every task", b: member("b", "", 0), maxWarmups: 2,
			actives: "a:[0 1 2 3] b:[]", standbys: map[string]string{"b": "warm:count/2 warm:count/3"}, warmups: 2,
		},
		{
			name: "b fresh, one warm-up: the other task moves at once", b: member("b", "", 0), maxWarmups: 1,
			actives: "a:[0 1 2] b:[3]", standbys: map[string]string{"b": "warm:count/2"}, warmups: 1,
		},
		{
			name: "warm-ups off", b: member("b", "", 0), maxWarmups: -1,
			actives: "a:[0 1] b:[2 3]", standbys: map[string]string{}, warmups: 0,
		},
		{
			name: "b within the acceptable lag: it takes its share", b: member("b", "", 995), maxWarmups: 2,
			actives: "a:[0 1] b:[2 3]", standbys: map[string]string{}, warmups: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := assignTasks(assignInput{
				members:       []assignMember{a, tc.b},
				partitions:    map[string]int32{"in": 4},
				pipelines:     []pipelineShape{counter},
				ends:          ends,
				maxWarmups:    tc.maxWarmups,
				acceptableLag: 10,
			})
			if got := "a:" + fmtParts(plan.members["a"]["in"]) + " b:" + fmtParts(plan.members["b"]["in"]); got != tc.actives {
				t.Errorf("actives %s, want %s", got, tc.actives)
			}
			if got := renderStandbys(plan); !equalMaps(got, tc.standbys) {
				t.Errorf("standbys %v, want %v", got, tc.standbys)
			}
			if plan.warmups != tc.warmups {
				t.Errorf("warmups %d, want %d", plan.warmups, tc.warmups)
			}
		})
	}
}

func fmtParts(ps []int32) string {
	s := "["
	for i, p := range ps {
		if i > 0 {
			s += " "
		}
		s += string(rune('0' + p))
	}
	return s + "]"
}

// TestAssignFailoverToStandby: of three members, a has died; b holds
// caught-up standby copies of both of a's tasks, c none. Both tasks go to
// b, one beyond its share, rather than one to c with its whole changelog
// to restore; c warms a copy of that one up, and it moves once caught up.
func TestAssignFailoverToStandby(t *testing.T) {
	counter, ends, member := sixTasks()
	b := member("b", "in:2,3", 0, 1, 2, 3)
	c := member("c", "in:4,5", 4, 5)
	for _, tc := range []struct {
		name       string
		maxWarmups int
		actives    string
		standbys   map[string]string
	}{
		{"to the standby, a warm-up on c", 2, "b:[0 1 2 3] c:[4 5]", map[string]string{"c": "warm:count/1"}},
		{"warm-ups off: balanced at once", -1, "b:[0 2 3] c:[1 4 5]", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := assignTasks(assignInput{
				members:       []assignMember{b, c},
				partitions:    map[string]int32{"in": 6},
				pipelines:     []pipelineShape{counter},
				ends:          ends,
				maxWarmups:    tc.maxWarmups,
				acceptableLag: 10,
			})
			if got := "b:" + fmtParts(plan.members["b"]["in"]) + " c:" + fmtParts(plan.members["c"]["in"]); got != tc.actives {
				t.Errorf("actives %s, want %s", got, tc.actives)
			}
			if got := renderStandbys(plan); !equalMaps(got, tc.standbys) {
				t.Errorf("standbys %v, want %v", got, tc.standbys)
			}
		})
	}
}

// TestWarmupsForgottenOnJoin: the warm-ups a process counted as leader are
// forgotten when it joins again, so that it stops probing once another
// process leads; Balance counts them anew on the leader.
func TestWarmupsForgottenOnJoin(t *testing.T) {
	e := &Engine{cfg: Config{ApplicationID: "app", StateDir: t.TempDir()}, log: slog.New(slog.DiscardHandler)}
	e.track.init(nil)
	e.warmups.Store(2)
	(&groupBalancer{e: e}).JoinGroupMetadata([]string{"in"}, nil, 4)
	if n := e.warmups.Load(); n != 0 {
		t.Errorf("after a join the process still counts %d warm-ups", n)
	}
}
