package assign

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// owns is a member's owned partitions, written "topic:p,p topic:p".
func owns(s string) map[string][]int32 {
	m := map[string][]int32{}
	for _, f := range strings.Fields(s) {
		topic, ps, _ := strings.Cut(f, ":")
		for _, p := range strings.Split(ps, ",") {
			var n int32
			fmt.Sscan(p, &n)
			m[topic] = append(m[topic], n)
		}
	}
	return m
}

// render writes a plan as member -> "topic:p,p topic:p", topics sorted.
func render(plan map[string]map[string][]int32) map[string]string {
	out := map[string]string{}
	for member, topics := range plan {
		var fs []string
		for _, topic := range slices.Sorted(maps.Keys(topics)) {
			ps := slices.Sorted(slices.Values(topics[topic]))
			var strs []string
			for _, p := range ps {
				strs = append(strs, fmt.Sprint(p))
			}
			if len(strs) > 0 {
				fs = append(fs, topic+":"+strings.Join(strs, ","))
			}
		}
		out[member] = strings.Join(fs, " ")
	}
	return out
}

func TestAssignTasks(t *testing.T) {
	counter := Pipeline{Name: "count", Inputs: []string{"in"}, Stores: []string{"seen"}, Changelogs: []string{"app-seen-changelog"}}
	join := Pipeline{Name: "join", Inputs: []string{"left", "right"}, Stores: []string{"j"}, Changelogs: []string{"app-j-changelog"}}
	// ends gives every partition of the changelog of store s an end of n.
	ends := func(changelog string, parts int32, n int64) map[TopicPartition]int64 {
		m := map[TopicPartition]int64{}
		for p := range parts {
			m[TopicPartition{changelog, p}] = n
		}
		return m
	}
	fresh := func(id string, topics ...string) Member {
		return Member{ID: id, Topics: topics, Owned: map[string][]int32{}, Stores: map[Task]map[string]int64{}}
	}
	with := func(m Member, gen int32, owned string, stores map[Task]map[string]int64) Member {
		m.Generation, m.Owned = gen, owns(owned)
		if stores != nil {
			m.Stores = stores
		}
		return m
	}
	seen := func(offs map[int32]int64) map[Task]map[string]int64 {
		m := map[Task]map[string]int64{}
		for p, o := range offs {
			m[Task{"count", p}] = map[string]int64{"seen": o}
		}
		return m
	}

	for _, tc := range []struct {
		name       string
		pipelines  []Pipeline
		partitions map[string]int32
		members    []Member
		ends       map[TopicPartition]int64
		want       map[string]string
		reasons    map[string]Reason // task name -> reason, where it matters
	}{
		{
			name:       "co-partitioned inputs go together",
			pipelines:  []Pipeline{join},
			partitions: map[string]int32{"left": 4, "right": 4},
			members:    []Member{fresh("a", "left", "right"), fresh("b", "left", "right")},
			want:       map[string]string{"a": "left:0,2 right:0,2", "b": "left:1,3 right:1,3"},
		},
		{
			name:       "a split unit goes to one member",
			pipelines:  []Pipeline{join},
			partitions: map[string]int32{"left": 2, "right": 2},
			members: []Member{
				// The cooperative sticky balancer left partition 0 split.
				with(fresh("a", "left", "right"), 4, "left:0,1 right:1", nil),
				with(fresh("b", "left", "right"), 4, "right:0", nil),
			},
			want: map[string]string{"a": "left:1 right:1", "b": "left:0 right:0"},
		},
		{
			name: "pipelines sharing a topic stay together",
			pipelines: []Pipeline{
				{Name: "p1", Inputs: []string{"a", "b"}},
				{Name: "p2", Inputs: []string{"b", "c"}},
				{Name: "p3", Inputs: []string{"d"}},
			},
			partitions: map[string]int32{"a": 2, "b": 2, "c": 2, "d": 2},
			members:    []Member{fresh("m1", "a", "b", "c", "d"), fresh("m2", "a", "b", "c", "d")},
			want:       map[string]string{"m1": "a:0 b:0 c:0 d:0", "m2": "a:1 b:1 c:1 d:1"},
		},
		{
			name:       "sticky: owners keep their tasks",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 4},
			members: []Member{
				with(fresh("a", "in"), 7, "in:1,3", seen(map[int32]int64{1: 100, 3: 100})),
				with(fresh("b", "in"), 7, "in:0,2", seen(map[int32]int64{0: 100, 2: 100})),
			},
			ends:    ends("app-seen-changelog", 4, 100),
			want:    map[string]string{"a": "in:1,3", "b": "in:0,2"},
			reasons: map[string]Reason{"count/0": Kept, "count/1": Kept},
		},
		{
			name:       "sticky beats lag",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 2},
			members: []Member{
				// a runs count/0 but its copy of count/1, from long ago, is
				// far behind b's: b does not take count/0 back.
				with(fresh("a", "in"), 3, "in:0", seen(map[int32]int64{0: 10})),
				with(fresh("b", "in"), 3, "in:1", seen(map[int32]int64{0: 100, 1: 100})),
			},
			ends: ends("app-seen-changelog", 2, 100),
			want: map[string]string{"a": "in:0", "b": "in:1"},
		},
		{
			name:       "lag-aware: the member with the store beats a fresh one",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 2},
			members: []Member{
				fresh("a", "in"),
				with(fresh("b", "in"), 0, "", seen(map[int32]int64{1: 90})),
			},
			ends:    ends("app-seen-changelog", 2, 100),
			want:    map[string]string{"a": "in:0", "b": "in:1"},
			reasons: map[string]Reason{"count/0": LeastLoaded, "count/1": CaughtUp},
		},
		{
			name:       "lag-aware: the most caught-up copy wins",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 4},
			members: []Member{
				with(fresh("b", "in"), 5, "in:0,1", seen(map[int32]int64{0: 100, 1: 100})),
				with(fresh("c", "in"), 0, "", seen(map[int32]int64{2: 5, 3: 95})),
				with(fresh("d", "in"), 0, "", seen(map[int32]int64{2: 10})),
			},
			ends: ends("app-seen-changelog", 4, 100),
			want: map[string]string{"b": "in:0,1", "c": "in:3", "d": "in:2"},
		},
		{
			name:       "lag-aware without end offsets: the highest offset is the end",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 2},
			members: []Member{
				with(fresh("a", "in"), 0, "", seen(map[int32]int64{0: 40, 1: 50})),
				with(fresh("b", "in"), 0, "", seen(map[int32]int64{0: 30, 1: 60})),
			},
			want: map[string]string{"a": "in:0", "b": "in:1"},
		},
		{
			name:       "lag-aware: an offset past the end is no copy",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 2},
			members: []Member{
				with(fresh("a", "in"), 0, "", seen(map[int32]int64{1: 500})),
				with(fresh("b", "in"), 0, "", seen(map[int32]int64{1: 60})),
			},
			ends: ends("app-seen-changelog", 2, 100),
			want: map[string]string{"a": "in:0", "b": "in:1"},
		},
		{
			name:       "balance within one task",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 8},
			members: []Member{
				with(fresh("a", "in"), 2, "in:0,1,2,3,4,5,6,7", nil),
				fresh("b", "in"),
				fresh("c", "in"),
			},
			want: map[string]string{"a": "in:0,1,2", "b": "in:3,5,7", "c": "in:4,6"},
		},
		{
			name:       "more members than tasks",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 2},
			members: []Member{
				with(fresh("a", "in"), 2, "in:0,1", nil),
				fresh("b", "in"),
				fresh("c", "in"),
			},
			want: map[string]string{"a": "in:0", "b": "in:1", "c": ""},
		},
		{
			name:       "a member joins: the owner gives up half",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 4},
			members: []Member{
				with(fresh("a", "in"), 2, "in:0,1,2,3", seen(map[int32]int64{0: 100, 1: 100, 2: 100, 3: 100})),
				fresh("b", "in"),
			},
			ends: ends("app-seen-changelog", 4, 100),
			want: map[string]string{"a": "in:0,1", "b": "in:2,3"},
		},
		{
			name:       "a member rejoins with its stores: it gets back what it had",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 4},
			members: []Member{
				with(fresh("a", "in"), 9, "in:0,1,2,3", seen(map[int32]int64{0: 100, 1: 100, 2: 100, 3: 100})),
				// b ran count/0 and count/3 before it left; a has moved
				// them on by 5 records since.
				with(fresh("b", "in"), 0, "", seen(map[int32]int64{0: 95, 3: 95})),
			},
			ends: ends("app-seen-changelog", 4, 100),
			want: map[string]string{"a": "in:1,2", "b": "in:0,3"},
		},
		{
			name:       "a member leaves: its tasks go to the copies",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 6},
			members: []Member{
				// c, gone, owned 4 and 5; b kept a copy of 5, a of 4.
				with(fresh("a", "in"), 4, "in:0,1", seen(map[int32]int64{0: 100, 1: 100, 4: 80})),
				with(fresh("b", "in"), 4, "in:2,3", seen(map[int32]int64{2: 100, 3: 100, 5: 70})),
			},
			ends:    ends("app-seen-changelog", 6, 100),
			want:    map[string]string{"a": "in:0,1,4", "b": "in:2,3,5"},
			reasons: map[string]Reason{"count/4": CaughtUp, "count/5": CaughtUp},
		},
		{
			name:       "a stale claim loses to a newer generation",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 2},
			members: []Member{
				with(fresh("a", "in"), 3, "in:0,1", nil), // missed rebalances
				with(fresh("b", "in"), 5, "in:0", nil),
			},
			want: map[string]string{"a": "in:1", "b": "in:0"},
		},
		{
			name:       "static members sort first",
			pipelines:  []Pipeline{counter},
			partitions: map[string]int32{"in": 1},
			members: []Member{
				fresh("a", "in"),
				func() Member { m := fresh("z", "in"); m.Instance = "i1"; return m }(),
			},
			want: map[string]string{"a": "", "z": "in:0"},
		},
		{
			name: "topics with differing partition counts",
			pipelines: []Pipeline{
				{Name: "wide", Inputs: []string{"x"}},
				{Name: "narrow", Inputs: []string{"y"}},
			},
			partitions: map[string]int32{"x": 4, "y": 2},
			members:    []Member{fresh("a", "x", "y"), fresh("b", "x", "y")},
			want:       map[string]string{"a": "x:0,2 y:0", "b": "x:1,3 y:1"},
		},
		{
			name:       "co-partitioned inputs with differing partition counts",
			pipelines:  []Pipeline{join},
			partitions: map[string]int32{"left": 4, "right": 2},
			members:    []Member{fresh("a", "left", "right"), fresh("b", "left", "right")},
			want:       map[string]string{"a": "left:0,2 right:0", "b": "left:1,3 right:1"},
		},
		{
			name:       "members reading different topics",
			pipelines:  []Pipeline{join},
			partitions: map[string]int32{"left": 2, "right": 2},
			// No member reads both: the units split.
			members: []Member{fresh("a", "left"), fresh("b", "right")},
			want:    map[string]string{"a": "left:0,1", "b": "right:0,1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Members: tc.members, Partitions: tc.partitions, Pipelines: tc.pipelines, Ends: tc.ends}
			plan := Assign(in)
			if got := render(plan.Members); !maps.Equal(got, tc.want) {
				t.Errorf("assignment %v, want %v", got, tc.want)
			}
			for _, d := range plan.Units {
				for _, name := range d.Names {
					if want, ok := tc.reasons[name]; ok && d.Reason != want {
						t.Errorf("%s went to %s as %s, want %s", name, d.Member, d.Reason, want)
					}
				}
			}
			// Every partition goes to exactly one member.
			count := map[TopicPartition]int{}
			for _, topics := range plan.Members {
				for topic, ps := range topics {
					for _, p := range ps {
						count[TopicPartition{topic, p}]++
					}
				}
			}
			for topic, n := range tc.partitions {
				for p := range n {
					if c := count[TopicPartition{topic, p}]; c != 1 {
						t.Errorf("%s/%d assigned %d times", topic, p, c)
					}
				}
			}
			// The same input in another order gives the same plan.
			in.Members = slices.Clone(tc.members)
			slices.Reverse(in.Members)
			if again := render(Assign(in).Members); !maps.Equal(again, render(plan.Members)) {
				t.Errorf("with the members reversed: %v, want %v", again, render(plan.Members))
			}
		})
	}
}

// TestAssignTasksConverges balances a group in the two rounds of a
// cooperative rebalance: the second round, with the moving units revoked,
// gives the plan of the first.
func TestAssignTasksConverges(t *testing.T) {
	counter := Pipeline{Name: "count", Inputs: []string{"in"}, Stores: []string{"seen"}, Changelogs: []string{"app-seen-changelog"}}
	for _, tc := range []struct {
		name   string
		parts  int32
		owners []string // the owned partitions of each member, "in:0,1"; "" for a new member
	}{
		{"one joins two", 4, []string{"in:0,1,2,3", ""}},
		{"odd", 5, []string{"in:0,1,2,3,4", ""}},
		{"two join one", 7, []string{"in:0,1,2,3,4,5,6", "", ""}},
		{"uneven", 9, []string{"in:0,1,2,3,4,5", "in:6,7,8", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var members []Member
			for i, o := range tc.owners {
				m := Member{ID: fmt.Sprintf("m%d", i), Topics: []string{"in"}, Generation: 1, Owned: owns(o), Stores: map[Task]map[string]int64{}}
				for _, p := range m.Owned["in"] {
					m.Stores[Task{"count", p}] = map[string]int64{"seen": 10}
				}
				members = append(members, m)
			}
			in := Input{Members: members, Partitions: map[string]int32{"in": tc.parts}, Pipelines: []Pipeline{counter}}
			first := Assign(in).Members
			// Round two: every member owns what it kept of round one.
			for i := range in.Members {
				m := &in.Members[i]
				var kept []int32
				for _, p := range m.Owned["in"] {
					if slices.Contains(first[m.ID]["in"], p) {
						kept = append(kept, p)
					}
				}
				m.Owned, m.Generation = map[string][]int32{"in": kept}, 2
			}
			second := Assign(in).Members
			if !maps.Equal(render(first), render(second)) {
				t.Errorf("round two %v, want round one's %v", render(second), render(first))
			}
			lo, hi := int(tc.parts), 0
			for _, m := range first {
				lo, hi = min(lo, len(m["in"])), max(hi, len(m["in"]))
			}
			if hi-lo > 1 {
				t.Errorf("loads from %d to %d: %v", lo, hi, render(first))
			}
		})
	}
}
