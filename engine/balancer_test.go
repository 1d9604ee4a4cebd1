package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowstate/flowstate/state"
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
	counter := pipelineShape{name: "count", inputs: []string{"in"}, stores: []string{"seen"}, changelogs: []string{"app-seen-changelog"}}
	join := pipelineShape{name: "join", inputs: []string{"left", "right"}, stores: []string{"j"}, changelogs: []string{"app-j-changelog"}}
	// ends gives every partition of the changelog of store s an end of n.
	ends := func(changelog string, parts int32, n int64) map[topicPartition]int64 {
		m := map[topicPartition]int64{}
		for p := range parts {
			m[topicPartition{changelog, p}] = n
		}
		return m
	}
	fresh := func(id string, topics ...string) assignMember {
		return assignMember{id: id, topics: topics, owned: map[string][]int32{}, stores: map[taskKey]map[string]int64{}}
	}
	with := func(m assignMember, gen int32, owned string, stores map[taskKey]map[string]int64) assignMember {
		m.generation, m.owned = gen, owns(owned)
		if stores != nil {
			m.stores = stores
		}
		return m
	}
	seen := func(offs map[int32]int64) map[taskKey]map[string]int64 {
		m := map[taskKey]map[string]int64{}
		for p, o := range offs {
			m[taskKey{"count", p}] = map[string]int64{"seen": o}
		}
		return m
	}

	for _, tc := range []struct {
		name       string
		pipelines  []pipelineShape
		partitions map[string]int32
		members    []assignMember
		ends       map[topicPartition]int64
		want       map[string]string
		reasons    map[string]assignReason // task name -> reason, where it matters
	}{
		{
			name:       "co-partitioned inputs go together",
			pipelines:  []pipelineShape{join},
			partitions: map[string]int32{"left": 4, "right": 4},
			members:    []assignMember{fresh("a", "left", "right"), fresh("b", "left", "right")},
			want:       map[string]string{"a": "left:0,2 right:0,2", "b": "left:1,3 right:1,3"},
		},
		{
			name:       "a split unit goes to one member",
			pipelines:  []pipelineShape{join},
			partitions: map[string]int32{"left": 2, "right": 2},
			members: []assignMember{
				// The cooperative sticky balancer left partition 0 split.
				with(fresh("a", "left", "right"), 4, "left:0,1 right:1", nil),
				with(fresh("b", "left", "right"), 4, "right:0", nil),
			},
			want: map[string]string{"a": "left:1 right:1", "b": "left:0 right:0"},
		},
		{
			name: "pipelines sharing a topic stay together",
			pipelines: []pipelineShape{
				{name: "p1", inputs: []string{"a", "b"}},
				{name: "p2", inputs: []string{"b", "c"}},
				{name: "p3", inputs: []string{"d"}},
			},
			partitions: map[string]int32{"a": 2, "b": 2, "c": 2, "d": 2},
			members:    []assignMember{fresh("m1", "a", "b", "c", "d"), fresh("m2", "a", "b", "c", "d")},
			want:       map[string]string{"m1": "a:0 b:0 c:0 d:0", "m2": "a:1 b:1 c:1 d:1"},
		},
		{
			name:       "sticky: owners keep their tasks",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 4},
			members: []assignMember{
				with(fresh("a", "in"), 7, "in:1,3", seen(map[int32]int64{1: 100, 3: 100})),
				with(fresh("b", "in"), 7, "in:0,2", seen(map[int32]int64{0: 100, 2: 100})),
			},
			ends:    ends("app-seen-changelog", 4, 100),
			want:    map[string]string{"a": "in:1,3", "b": "in:0,2"},
			reasons: map[string]assignReason{"count/0": reasonKept, "count/1": reasonKept},
		},
		{
			name:       "sticky beats lag",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 2},
			members: []assignMember{
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
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 2},
			members: []assignMember{
				fresh("a", "in"),
				with(fresh("b", "in"), 0, "", seen(map[int32]int64{1: 90})),
			},
			ends:    ends("app-seen-changelog", 2, 100),
			want:    map[string]string{"a": "in:0", "b": "in:1"},
			reasons: map[string]assignReason{"count/0": reasonLeastLoaded, "count/1": reasonCaughtUp},
		},
		{
			name:       "lag-aware: the most caught-up copy wins",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 4},
			members: []assignMember{
				with(fresh("b", "in"), 5, "in:0,1", seen(map[int32]int64{0: 100, 1: 100})),
				with(fresh("c", "in"), 0, "", seen(map[int32]int64{2: 5, 3: 95})),
				with(fresh("d", "in"), 0, "", seen(map[int32]int64{2: 10})),
			},
			ends: ends("app-seen-changelog", 4, 100),
			want: map[string]string{"b": "in:0,1", "c": "in:3", "d": "in:2"},
		},
		{
			name:       "lag-aware without end offsets: the highest offset is the end",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 2},
			members: []assignMember{
				with(fresh("a", "in"), 0, "", seen(map[int32]int64{0: 40, 1: 50})),
				with(fresh("b", "in"), 0, "", seen(map[int32]int64{0: 30, 1: 60})),
			},
			want: map[string]string{"a": "in:0", "b": "in:1"},
		},
		{
			name:       "lag-aware: an offset past the end is no copy",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 2},
			members: []assignMember{
				with(fresh("a", "in"), 0, "", seen(map[int32]int64{1: 500})),
				with(fresh("b", "in"), 0, "", seen(map[int32]int64{1: 60})),
			},
			ends: ends("app-seen-changelog", 2, 100),
			want: map[string]string{"a": "in:0", "b": "in:1"},
		},
		{
			name:       "balance within one task",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 8},
			members: []assignMember{
				with(fresh("a", "in"), 2, "in:0,1,2,3,4,5,6,7", nil),
				fresh("b", "in"),
				fresh("c", "in"),
			},
			want: map[string]string{"a": "in:0,1,2", "b": "in:3,5,7", "c": "in:4,6"},
		},
		{
			name:       "more members than tasks",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 2},
			members: []assignMember{
				with(fresh("a", "in"), 2, "in:0,1", nil),
				fresh("b", "in"),
				fresh("c", "in"),
			},
			want: map[string]string{"a": "in:0", "b": "in:1", "c": ""},
		},
		{
			name:       "a member joins: the owner gives up half",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 4},
			members: []assignMember{
				with(fresh("a", "in"), 2, "in:0,1,2,3", seen(map[int32]int64{0: 100, 1: 100, 2: 100, 3: 100})),
				fresh("b", "in"),
			},
			ends: ends("app-seen-changelog", 4, 100),
			want: map[string]string{"a": "in:0,1", "b": "in:2,3"},
		},
		{
			name:       "a member rejoins with its stores: it gets back what it had",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 4},
			members: []assignMember{
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
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 6},
			members: []assignMember{
				// c, gone, owned 4 and 5; b kept a copy of 5, a of 4.
				with(fresh("a", "in"), 4, "in:0,1", seen(map[int32]int64{0: 100, 1: 100, 4: 80})),
				with(fresh("b", "in"), 4, "in:2,3", seen(map[int32]int64{2: 100, 3: 100, 5: 70})),
			},
			ends:    ends("app-seen-changelog", 6, 100),
			want:    map[string]string{"a": "in:0,1,4", "b": "in:2,3,5"},
			reasons: map[string]assignReason{"count/4": reasonCaughtUp, "count/5": reasonCaughtUp},
		},
		{
			name:       "a stale claim loses to a newer generation",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 2},
			members: []assignMember{
				with(fresh("a", "in"), 3, "in:0,1", nil), // missed rebalances
				with(fresh("b", "in"), 5, "in:0", nil),
			},
			want: map[string]string{"a": "in:1", "b": "in:0"},
		},
		{
			name:       "static members sort first",
			pipelines:  []pipelineShape{counter},
			partitions: map[string]int32{"in": 1},
			members: []assignMember{
				fresh("a", "in"),
				func() assignMember { m := fresh("z", "in"); m.instance = "i1"; return m }(),
			},
			want: map[string]string{"a": "", "z": "in:0"},
		},
		{
			name: "topics with differing partition counts",
			pipelines: []pipelineShape{
				{name: "wide", inputs: []string{"x"}},
				{name: "narrow", inputs: []string{"y"}},
			},
			partitions: map[string]int32{"x": 4, "y": 2},
			members:    []assignMember{fresh("a", "x", "y"), fresh("b", "x", "y")},
			want:       map[string]string{"a": "x:0,2 y:0", "b": "x:1,3 y:1"},
		},
		{
			name:       "co-partitioned inputs with differing partition counts",
			pipelines:  []pipelineShape{join},
			partitions: map[string]int32{"left": 4, "right": 2},
			members:    []assignMember{fresh("a", "left", "right"), fresh("b", "left", "right")},
			want:       map[string]string{"a": "left:0,2 right:0", "b": "left:1,3 right:1"},
		},
		{
			name:       "members reading different topics",
			pipelines:  []pipelineShape{join},
			partitions: map[string]int32{"left": 2, "right": 2},
			// No member reads both: the units split.
			members: []assignMember{fresh("a", "left"), fresh("b", "right")},
			want:    map[string]string{"a": "left:0,1", "b": "right:0,1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := assignInput{members: tc.members, partitions: tc.partitions, pipelines: tc.pipelines, ends: tc.ends}
			plan := assignTasks(in)
			if got := render(plan.members); !maps.Equal(got, tc.want) {
				t.Errorf("assignment %v, want %v", got, tc.want)
			}
			for _, d := range plan.units {
				for _, name := range d.names {
					if want, ok := tc.reasons[name]; ok && d.reason != want {
						t.Errorf("%s went to %s as %s, want %s", name, d.member, d.reason, want)
					}
				}
			}
			// Every partition goes to exactly one member.
			count := map[topicPartition]int{}
			for _, topics := range plan.members {
				for topic, ps := range topics {
					for _, p := range ps {
						count[topicPartition{topic, p}]++
					}
				}
			}
			for topic, n := range tc.partitions {
				for p := range n {
					if c := count[topicPartition{topic, p}]; c != 1 {
						t.Errorf("%s/%d assigned %d times", topic, p, c)
					}
				}
			}
			// The same input in another order gives the same plan.
			in.members = slices.Clone(tc.members)
			slices.Reverse(in.members)
			if again := render(assignTasks(in).members); !maps.Equal(again, render(plan.members)) {
				t.Errorf("with the members reversed: %v, want %v", again, render(plan.members))
			}
		})
	}
}

// TestAssignTasksConverges balances a group in the two rounds of a
// cooperative rebalance: the second round, with the moving units revoked,
// gives the plan of the first.
func TestAssignTasksConverges(t *testing.T) {
	counter := pipelineShape{name: "count", inputs: []string{"in"}, stores: []string{"seen"}, changelogs: []string{"app-seen-changelog"}}
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
			var members []assignMember
			for i, o := range tc.owners {
				m := assignMember{id: fmt.Sprintf("m%d", i), topics: []string{"in"}, generation: 1, owned: owns(o), stores: map[taskKey]map[string]int64{}}
				for _, p := range m.owned["in"] {
					m.stores[taskKey{"count", p}] = map[string]int64{"seen": 10}
				}
				members = append(members, m)
			}
			in := assignInput{members: members, partitions: map[string]int32{"in": tc.parts}, pipelines: []pipelineShape{counter}}
			first := assignTasks(in).members
			// Round two: every member owns what it kept of round one.
			for i := range in.members {
				m := &in.members[i]
				var kept []int32
				for _, p := range m.owned["in"] {
					if slices.Contains(first[m.id]["in"], p) {
						kept = append(kept, p)
					}
				}
				m.owned, m.generation = map[string][]int32{"in": kept}, 2
			}
			second := assignTasks(in).members
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

func TestUserData(t *testing.T) {
	states := []storeState{
		{task: taskKey{"b-pipe", 3}, changelog: map[string]int64{"s2": 7, "s1": 1 << 40}},
		{task: taskKey{"a", 0}, open: true, changelog: map[string]int64{}},
	}
	b := encodeUserData(states)
	got, err := decodeUserData(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []storeState{states[1], states[0]} // sorted
	if len(got) != len(want) {
		t.Fatalf("decoded %d tasks, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].task != want[i].task || got[i].open != want[i].open || !maps.Equal(got[i].changelog, want[i].changelog) {
			t.Errorf("task %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if again := encodeUserData(got); string(again) != string(b) {
		t.Error("encoding is not deterministic")
	}

	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"later version", append([]byte{userDataVersion + 1}, b[1:]...)},
		{"truncated", b[:len(b)-1]},
		{"trailing bytes", append(b, 0)},
		{"huge count", []byte{userDataVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeUserData(tc.b); !errors.Is(err, errUserData) {
				t.Errorf("decode = %v, want errUserData", err)
			}
		})
	}
	if s, err := decodeUserData(nil); err != nil || s != nil {
		t.Errorf("empty user data: %v, %v; want nothing", s, err)
	}
}

// TestBalancerCooperative runs the balancer as kgo does, from join
// metadata: a task moving between members is held back from its new
// member until its owner has revoked it.
func TestBalancerCooperative(t *testing.T) {
	e := &Engine{
		cfg:       Config{ApplicationID: "app", StateDir: t.TempDir()},
		log:       slog.New(slog.DiscardHandler),
		pipelines: []*pipeline{{cfg: Pipeline{Name: "join", Inputs: []string{"left", "right"}}}},
	}
	e.track.init(e.pipelines)
	b := &groupBalancer{e: e}
	if b.ProtocolName() != "flowstate-v1" || !b.IsCooperative() {
		t.Fatalf("protocol %s, cooperative %v", b.ProtocolName(), b.IsCooperative())
	}
	topics := []string{"left", "right"}
	members := []kmsg.JoinGroupResponseMember{
		{MemberID: "a", ProtocolMetadata: b.JoinGroupMetadata(topics, owns("left:0,1 right:0,1"), 4)},
		{MemberID: "b", ProtocolMetadata: b.JoinGroupMetadata(topics, nil, -1)},
	}
	mb, interests, err := b.MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	if len(interests) != 2 {
		t.Errorf("interests %v, want left and right", interests)
	}
	into := mb.(kgo.GroupMemberBalancerOrError)
	plan, err := into.BalanceOrError(map[string]int32{"left": 2, "right": 2})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, sa := range plan.IntoSyncAssignment() {
		parts, err := b.ParseSyncAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		got[sa.MemberID] = render(map[string]map[string][]int32{"x": parts})["x"]
	}
	// a keeps partition 0 and revokes 1, which b gets in the next round.
	want := map[string]string{"a": "left:0 right:0", "b": ""}
	if !maps.Equal(got, want) {
		t.Errorf("sync assignment %v, want %v", got, want)
	}
}

// TestStoreStates lists a state directory as a join reports it: a closed
// task directory by its closed offsets file, a directory a crash left
// without one after recoverClosedOffsets has opened it once, and nothing
// for other directories.
func TestStoreStates(t *testing.T) {
	e := &Engine{
		cfg:       Config{ApplicationID: "app", StateDir: t.TempDir()},
		log:       slog.New(slog.DiscardHandler),
		pipelines: []*pipeline{{cfg: Pipeline{Name: "my-pipe", Stores: []string{"s1", "s2"}}}},
	}
	e.track.init(e.pipelines)
	commit := func(k taskKey, off map[string]int64) {
		db, err := state.Open(state.Config{Dir: e.taskDir(k), Stores: []string{"s1", "s2"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Commit(state.Offsets{Changelog: off}); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	closed, crashed := taskKey{"my-pipe", 0}, taskKey{"my-pipe", 12}
	commit(closed, map[string]int64{"s1": 5})
	if err := e.layout().Task(closed.pipeline, closed.partition).WriteClosedOffsets(map[string]int64{"s1": 5, "s2": 0}); err != nil {
		t.Fatal(err)
	}
	commit(crashed, map[string]int64{"s1": 7, "s2": 9})
	for _, dir := range []string{"other-pipe-1", "not a task", ".deleting-my-pipe-3-1"} {
		if err := os.MkdirAll(filepath.Join(e.cfg.StateDir, "app", dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	render := func(states []storeState) map[taskKey]map[string]int64 {
		m := map[taskKey]map[string]int64{}
		for _, s := range states {
			m[s.task] = s.changelog
		}
		return m
	}
	if got := render(e.storeStates()); len(got) != 1 || !maps.Equal(got[closed], map[string]int64{"s1": 5, "s2": 0}) {
		t.Errorf("before recovery: %v, want only %s", got, closed)
	}
	e.recoverClosedOffsets()
	got := render(e.storeStates())
	if len(got) != 2 || !maps.Equal(got[crashed], map[string]int64{"s1": 7, "s2": 9}) {
		t.Errorf("after recovery: %v, want %s with s1 7, s2 9 too", got, crashed)
	}
}
