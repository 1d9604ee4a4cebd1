package assign

import (
	"slices"
	"strings"
	"testing"
)

// renderStandbys writes a plan's standbys as member -> "count/0 count/2",
// a warm-up as "warm:count/1".
func renderStandbys(plan Plan) map[string]string {
	out := map[string]string{}
	for id, ks := range plan.Standbys {
		names := make([]string, len(ks))
		for i, k := range ks {
			names[i] = k.String()
			if k.Warmup {
				names[i] = "warm:" + names[i]
			}
		}
		slices.Sort(names)
		out[id] = strings.Join(names, " ")
	}
	return out
}

// rackMember returns m on rack r.
func rackMember(m Member, r string) Member {
	m.Rack = r
	return m
}

func TestAssignStandbys(t *testing.T) {
	counter := Pipeline{Name: "count", Inputs: []string{"in"}, Stores: []string{"seen"}, Changelogs: []string{"app-seen-changelog"}}
	stateless := Pipeline{Name: "map", Inputs: []string{"in"}}
	member := func(id string, owned string, offs map[int32]int64) Member {
		m := Member{ID: id, Topics: []string{"in"}, Generation: 1, Owned: owns(owned), Stores: map[Task]map[string]int64{}}
		if owned == "" {
			m.Owned = map[string][]int32{}
		}
		for p, o := range offs {
			m.Stores[Task{"count", p}] = map[string]int64{"seen": o}
		}
		return m
	}
	ends := map[TopicPartition]int64{}
	for p := range int32(4) {
		ends[TopicPartition{"app-seen-changelog", p}] = 100
	}
	for _, tc := range []struct {
		name      string
		pipelines []Pipeline
		standbys  int
		members   []Member
		want      map[string]string // member -> its standby tasks
	}{
		{
			name:      "none by default",
			pipelines: []Pipeline{counter},
			members:   []Member{member("a", "", nil), member("b", "", nil)},
			want:      map[string]string{},
		},
		{
			name:      "one each on the other member",
			pipelines: []Pipeline{counter},
			standbys:  1,
			members:   []Member{member("a", "in:0,1", nil), member("b", "in:2,3", nil)},
			want:      map[string]string{"a": "count/2 count/3", "b": "count/0 count/1"},
		},
		{
			name:      "more replicas than other members",
			pipelines: []Pipeline{counter},
			standbys:  3,
			members:   []Member{member("a", "in:0,1", nil), member("b", "in:2,3", nil)},
			want:      map[string]string{"a": "count/2 count/3", "b": "count/0 count/1"},
		},
		{
			// c holds caught-up copies of a's tasks: they stay its
			// standbys although b has fewer tasks.
			name:      "sticky: the most caught-up copy",
			pipelines: []Pipeline{counter},
			standbys:  1,
			members: []Member{
				member("a", "in:0,1", map[int32]int64{0: 100, 1: 100}),
				member("b", "in:2,3", nil),
				member("c", "", map[int32]int64{0: 99, 1: 98}),
			},
			want: map[string]string{"a": "count/2", "b": "count/3", "c": "count/0 count/1"},
		},
		{
			// b holds caught-up copies of every other task, but keeps
			// only as many standbys as its share of all tasks (8 over 3
			// members: 3); the copy of 3 goes to a.
			name:      "sticky within a member's share",
			pipelines: []Pipeline{counter},
			standbys:  1,
			members: []Member{
				member("a", "in:0,1", nil),
				member("b", "in:2", map[int32]int64{0: 100, 1: 100, 3: 100}),
				member("c", "in:3", nil),
			},
			want: map[string]string{"a": "count/3", "b": "count/0 count/1", "c": "count/2"},
		},
		{
			// Three members, two racks: the tasks active on r1 (a's 0
			// and 1, b's 3) have their standbys on c, the only member of
			// r2, although b holds caught-up copies of 0 and 1; c's task 2
			// has its standby on r1.
			name:      "racks: away from the active's rack",
			pipelines: []Pipeline{counter},
			standbys:  1,
			members: []Member{
				rackMember(member("a", "in:0,1", nil), "r1"),
				rackMember(member("b", "", map[int32]int64{0: 100, 1: 100}), "r1"),
				rackMember(member("c", "in:2,3", nil), "r2"),
			},
			want: map[string]string{"b": "count/2", "c": "count/0 count/1 count/3"},
		},
		{
			name:      "spread over members without copies",
			pipelines: []Pipeline{counter},
			standbys:  2,
			members:   []Member{member("a", "", nil), member("b", "", nil), member("c", "", nil), member("d", "", nil)},
			// Every member runs one task and keeps two standbys.
			want: map[string]string{"a": "count/1 count/2", "b": "count/0 count/3", "c": "count/0 count/3", "d": "count/1 count/2"},
		},
		{
			name:      "stateless tasks get none",
			pipelines: []Pipeline{stateless},
			standbys:  1,
			members:   []Member{member("a", "", nil), member("b", "", nil)},
			want:      map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := Assign(Input{
				Members:    tc.members,
				Partitions: map[string]int32{"in": 4},
				Pipelines:  tc.pipelines,
				Ends:       ends,
				Standbys:   tc.standbys,
			})
			got := renderStandbys(plan)
			if !equalMaps(got, tc.want) {
				t.Errorf("standbys %v, want %v (actives %v)", got, tc.want, render(plan.Members))
			}
			// Never a standby where the task is active.
			for id, ks := range plan.Standbys {
				for _, k := range ks {
					if slices.Contains(plan.Members[id]["in"], k.Partition) {
						t.Errorf("member %s has %s both active and standby", id, k)
					}
				}
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestAssignStandbysBalanced: a and b hold caught-up copies of every task
// (they ran them all before c joined), c only of its own. Stickiness
// would put every standby on a and b, as the standbys of c's tasks can go
// nowhere else; each member ends with two, its share.
func TestAssignStandbysBalanced(t *testing.T) {
	counter, ends, member := sixTasks()
	plan := Assign(Input{
		Members: []Member{
			member("a", "in:1,2", 0, 1, 2, 3, 4, 5),
			member("b", "in:0,3", 0, 1, 2, 3, 4, 5),
			member("c", "in:4,5", 4, 5),
		},
		Partitions: map[string]int32{"in": 6},
		Pipelines:  []Pipeline{counter},
		Ends:       ends,
		Standbys:   1,
	})
	for _, id := range []string{"a", "b", "c"} {
		if n := len(plan.Standbys[id]); n != 2 {
			t.Errorf("member %s has %d standbys, want 2: %v", id, n, renderStandbys(plan))
		}
	}
}

// sixTasks is the setup of tests over the six tasks of pipeline "count",
// whose changelogs end at 1000: the pipeline, the ends, and a member of
// generation 3 that consumes owned and holds caught-up copies of the tasks
// of copies.
func sixTasks() (Pipeline, map[TopicPartition]int64, func(id, owned string, copies ...int32) Member) {
	counter := Pipeline{Name: "count", Inputs: []string{"in"}, Stores: []string{"seen"}, Changelogs: []string{"app-seen-changelog"}}
	ends := map[TopicPartition]int64{}
	for p := range int32(6) {
		ends[TopicPartition{"app-seen-changelog", p}] = 1000
	}
	member := func(id, owned string, copies ...int32) Member {
		m := Member{ID: id, Topics: []string{"in"}, Generation: 3, Owned: owns(owned), Stores: map[Task]map[string]int64{}}
		for _, p := range copies {
			m.Stores[Task{"count", p}] = map[string]int64{"seen": 1000}
		}
		return m
	}
	return counter, ends, member
}
