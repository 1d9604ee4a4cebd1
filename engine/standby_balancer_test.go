package engine

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// renderStandbys writes a plan's standbys as member -> "count/0 count/2",
// a warm-up as "warm:count/1".
func renderStandbys(plan assignPlan) map[string]string {
	out := map[string]string{}
	for id, ks := range plan.standbys {
		names := make([]string, len(ks))
		for i, k := range ks {
			names[i] = k.String()
			if k.warmup {
				names[i] = "warm:" + names[i]
			}
		}
		slices.Sort(names)
		out[id] = strings.Join(names, " ")
	}
	return out
}

// rackMember returns m on rack r.
func rackMember(m assignMember, r string) assignMember {
	m.rack = r
	return m
}

func TestAssignStandbys(t *testing.T) {
	counter := pipelineShape{name: "count", inputs: []string{"in"}, stores: []string{"seen"}, changelogs: []string{"app-seen-changelog"}}
	stateless := pipelineShape{name: "map", inputs: []string{"in"}}
	member := func(id string, owned string, offs map[int32]int64) assignMember {
		m := assignMember{id: id, topics: []string{"in"}, generation: 1, owned: owns(owned), stores: map[taskKey]map[string]int64{}}
		if owned == "" {
			m.owned = map[string][]int32{}
		}
		for p, o := range offs {
			m.stores[taskKey{"count", p}] = map[string]int64{"seen": o}
		}
		return m
	}
	ends := map[topicPartition]int64{}
	for p := range int32(4) {
		ends[topicPartition{"app-seen-changelog", p}] = 100
	}
	for _, tc := range []struct {
		name      string
		pipelines []pipelineShape
		standbys  int
		members   []assignMember
		want      map[string]string // member -> its standby tasks
	}{
		{
			name:      "none by default",
			pipelines: []pipelineShape{counter},
			members:   []assignMember{member("a", "", nil), member("b", "", nil)},
			want:      map[string]string{},
		},
		{
			name:      "one each on the other member",
			pipelines: []pipelineShape{counter},
			standbys:  1,
			members:   []assignMember{member("a", "in:0,1", nil), member("b", "in:2,3", nil)},
			want:      map[string]string{"a": "count/2 count/3", "b": "count/0 count/1"},
		},
		{
			name:      "more replicas than other members",
			pipelines: []pipelineShape{counter},
			standbys:  3,
			members:   []assignMember{member("a", "in:0,1", nil), member("b", "in:2,3", nil)},
			want:      map[string]string{"a": "count/2 count/3", "b": "count/0 count/1"},
		},
		{
			// c holds caught-up copies of a's tasks: they stay its
			// standbys although b has fewer tasks.
			name:      "sticky: the most caught-up copy",
			pipelines: []pipelineShape{counter},
			standbys:  1,
			members: []assignMember{
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
			pipelines: []pipelineShape{counter},
			standbys:  1,
			members: []assignMember{
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
			pipelines: []pipelineShape{counter},
			standbys:  1,
			members: []assignMember{
				rackMember(member("a", "in:0,1", nil), "r1"),
				rackMember(member("b", "", map[int32]int64{0: 100, 1: 100}), "r1"),
				rackMember(member("c", "in:2,3", nil), "r2"),
			},
			want: map[string]string{"b": "count/2", "c": "count/0 count/1 count/3"},
		},
		{
			name:      "spread over members without copies",
			pipelines: []pipelineShape{counter},
			standbys:  2,
			members:   []assignMember{member("a", "", nil), member("b", "", nil), member("c", "", nil), member("d", "", nil)},
			// Every member runs one task and keeps two standbys.
			want: map[string]string{"a": "count/1 count/2", "b": "count/0 count/3", "c": "count/0 count/3", "d": "count/1 count/2"},
		},
		{
			name:      "stateless tasks get none",
			pipelines: []pipelineShape{stateless},
			standbys:  1,
			members:   []assignMember{member("a", "", nil), member("b", "", nil)},
			want:      map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := assignTasks(assignInput{
				members:    tc.members,
				partitions: map[string]int32{"in": 4},
				pipelines:  tc.pipelines,
				ends:       ends,
				standbys:   tc.standbys,
			})
			got := renderStandbys(plan)
			if !equalMaps(got, tc.want) {
				t.Errorf("standbys %v, want %v (actives %v)", got, tc.want, render(plan.members))
			}
			// Never a standby where the task is active.
			for id, ks := range plan.standbys {
				for _, k := range ks {
					if slices.Contains(plan.members[id]["in"], k.partition) {
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

// TestStandbyAssignmentData round-trips the standby list through the
// SyncGroup assignment bytes, as the leader writes them and a member
// parses them.
func TestStandbyAssignmentData(t *testing.T) {
	ks := []standbyTask{{taskKey{"count", 0}, false}, {taskKey{"count", 3}, true}, {taskKey{"join", 2}, false}}
	got, err := decodeStandbys(encodeStandbys(ks))
	if err != nil || !slices.Equal(got, ks) {
		t.Fatalf("decode(encode(%v)) = %v, %v", ks, got, err)
	}
	if got, err := decodeStandbys(nil); err != nil || got != nil {
		t.Errorf("decode(nil) = %v, %v; want none", got, err)
	}
	// Version 1, without kind bytes, lists standbys only.
	v1 := []byte{1, 1, 5, 'c', 'o', 'u', 'n', 't', 6}
	if got, err := decodeStandbys(v1); err != nil || !slices.Equal(got, []standbyTask{{taskKey{"count", 3}, false}}) {
		t.Errorf("decode(version 1) = %v, %v; want count/3, a standby", got, err)
	}
	full := encodeStandbys(ks)
	for _, bad := range [][]byte{{9}, {standbyDataVersion, 5}, append(full, 0), full[:len(full)-1], append(full[:len(full)-1:len(full)-1], 2)} {
		if _, err := decodeStandbys(bad); !errors.Is(err, errUserData) {
			t.Errorf("decode(%v): %v, want errUserData", bad, err)
		}
	}

	// The leader's assignment carries the list in the user data; the
	// member's ParseSyncAssignment returns the partitions and stashes it.
	e := &Engine{log: slog.New(slog.DiscardHandler)}
	e.sb.init()
	var a kmsg.ConsumerMemberAssignment
	at := kmsg.NewConsumerMemberAssignmentTopic()
	at.Topic, at.Partitions = "in", []int32{1}
	a.Topics = append(a.Topics, at)
	a.UserData = encodeStandbys(ks)
	parts, err := (&groupBalancer{e: e}).ParseSyncAssignment(a.AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(parts["in"], []int32{1}) {
		t.Errorf("parsed partitions %v, want in:[1]", parts)
	}
	for _, k := range ks {
		if warmup, ok := e.sb.want[k.taskKey]; !ok || warmup != k.warmup {
			t.Errorf("standby %s recorded %v (%v), want warm-up %v", k, ok, warmup, k.warmup)
		}
	}
	// Plain consumer assignments (another balancer's) have no standbys.
	plain, err := (&groupBalancer{e: e}).ParseSyncAssignment(func() []byte {
		a.UserData = nil
		return a.AppendTo(nil)
	}())
	if err != nil || len(plain["in"]) != 1 || len(e.sb.want) != 0 {
		t.Errorf("plain assignment: %v, %v, standbys %v", plain, err, e.sb.want)
	}
}

// TestAssignStandbysBalanced: a and b hold caught-up copies of every task
// (they ran them all before c joined), c only of its own. Stickiness
// would put every standby on a and b, as the standbys of c's tasks can go
// nowhere else; each member ends with two, its share.
func TestAssignStandbysBalanced(t *testing.T) {
	counter, ends, member := sixTasks()
	plan := assignTasks(assignInput{
		members: []assignMember{
			member("a", "in:1,2", 0, 1, 2, 3, 4, 5),
			member("b", "in:0,3", 0, 1, 2, 3, 4, 5),
			member("c", "in:4,5", 4, 5),
		},
		partitions: map[string]int32{"in": 6},
		pipelines:  []pipelineShape{counter},
		ends:       ends,
		standbys:   1,
	})
	for _, id := range []string{"a", "b", "c"} {
		if n := len(plan.standbys[id]); n != 2 {
			t.Errorf("member %s has %d standbys, want 2: %v", id, n, renderStandbys(plan))
		}
	}
}

// sixTasks is the setup of tests over the six tasks of pipeline "count",
// whose changelogs end at 1000: the pipeline, the ends, and a member of
// generation 3 that consumes owned and holds caught-up copies of the tasks
// of copies.
func sixTasks() (pipelineShape, map[topicPartition]int64, func(id, owned string, copies ...int32) assignMember) {
	counter := pipelineShape{name: "count", inputs: []string{"in"}, stores: []string{"seen"}, changelogs: []string{"app-seen-changelog"}}
	ends := map[topicPartition]int64{}
	for p := range int32(6) {
		ends[topicPartition{"app-seen-changelog", p}] = 1000
	}
	member := func(id, owned string, copies ...int32) assignMember {
		m := assignMember{id: id, topics: []string{"in"}, generation: 3, owned: owns(owned), stores: map[taskKey]map[string]int64{}}
		for _, p := range copies {
			m.stores[taskKey{"count", p}] = map[string]int64{"seen": 1000}
		}
		return m
	}
	return counter, ends, member
}
