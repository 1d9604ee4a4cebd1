package assign

import "testing"

// TestAssignWarmups: member a runs every task with caught-up stores, and b
// joins. b takes its share at once when its copies are within the
// acceptable lag; otherwise a keeps the tasks, at most maxWarmups of them
// beyond its share, and b warms copies of them up as standbys.
func TestAssignWarmups(t *testing.T) {
	counter := Pipeline{Name: "count", Inputs: []string{"in"}, Stores: []string{"seen"}, Changelogs: []string{"app-seen-changelog"}}
	ends := map[TopicPartition]int64{}
	for p := range int32(4) {
		ends[TopicPartition{"app-seen-changelog", p}] = 1000
	}
	member := func(id, owned string, offset int64) Member {
		m := Member{ID: id, Topics: []string{"in"}, Generation: 1, Owned: owns(owned), Stores: map[Task]map[string]int64{}}
		if owned == "" {
			m.Owned = map[string][]int32{}
		}
		for p := range int32(4) {
			if offset > 0 {
				m.Stores[Task{"count", p}] = map[string]int64{"seen": offset}
			}
		}
		return m
	}
	a := member("a", "in:0,1,2,3", 1000)
	for _, tc := range []struct {
		name       string
		b          Member
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
			plan := Assign(Input{
				Members:       []Member{a, tc.b},
				Partitions:    map[string]int32{"in": 4},
				Pipelines:     []Pipeline{counter},
				Ends:          ends,
				MaxWarmups:    tc.maxWarmups,
				AcceptableLag: 10,
			})
			if got := "a:" + fmtParts(plan.Members["a"]["in"]) + " b:" + fmtParts(plan.Members["b"]["in"]); got != tc.actives {
				t.Errorf("actives %s, want %s", got, tc.actives)
			}
			if got := renderStandbys(plan); !equalMaps(got, tc.standbys) {
				t.Errorf("standbys %v, want %v", got, tc.standbys)
			}
			if plan.Warmups != tc.warmups {
				t.Errorf("warmups %d, want %d", plan.Warmups, tc.warmups)
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
			plan := Assign(Input{
				Members:       []Member{b, c},
				Partitions:    map[string]int32{"in": 6},
				Pipelines:     []Pipeline{counter},
				Ends:          ends,
				MaxWarmups:    tc.maxWarmups,
				AcceptableLag: 10,
			})
			if got := "b:" + fmtParts(plan.Members["b"]["in"]) + " c:" + fmtParts(plan.Members["c"]["in"]); got != tc.actives {
				t.Errorf("actives %s, want %s", got, tc.actives)
			}
			if got := renderStandbys(plan); !equalMaps(got, tc.standbys) {
				t.Errorf("standbys %v, want %v", got, tc.standbys)
			}
		})
	}
}
