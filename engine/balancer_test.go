package engine

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowstate/flowstate/engine/internal/assign"
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

// TestParseSyncAssignment: the leader's assignment carries the standby
// list in the user data; the member's ParseSyncAssignment returns the
// partitions and stashes the list.
func TestParseSyncAssignment(t *testing.T) {
	ks := []assign.Standby{{Task: assign.Task{Pipeline: "count", Partition: 0}}, {Task: assign.Task{Pipeline: "count", Partition: 3}, Warmup: true}, {Task: assign.Task{Pipeline: "join", Partition: 2}}}
	e := &Engine{log: slog.New(slog.DiscardHandler)}
	e.sb.init()
	var a kmsg.ConsumerMemberAssignment
	at := kmsg.NewConsumerMemberAssignmentTopic()
	at.Topic, at.Partitions = "in", []int32{1}
	a.Topics = append(a.Topics, at)
	a.UserData = assign.EncodeStandbys(ks)
	parts, err := (&groupBalancer{e: e}).ParseSyncAssignment(a.AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(parts["in"], []int32{1}) {
		t.Errorf("parsed partitions %v, want in:[1]", parts)
	}
	for _, k := range ks {
		if warmup, ok := e.sb.want[keyOf(k.Task)]; !ok || warmup != k.Warmup {
			t.Errorf("standby %s recorded %v (%v), want warm-up %v", k, ok, warmup, k.Warmup)
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

// TestBalancerAcquired: a member's subscription says when it was first
// assigned each partition it owns, and a member above its share gives up
// the one it took last, not the last in partition order.
func TestBalancerAcquired(t *testing.T) {
	e := &Engine{
		cfg:       Config{ApplicationID: "app", StateDir: t.TempDir()},
		log:       slog.New(slog.DiscardHandler),
		pipelines: []*pipeline{{cfg: Pipeline{Name: "map", Inputs: []string{"in"}}}},
	}
	e.track.init(e.pipelines)
	a, b := &groupBalancer{e: e}, &groupBalancer{e: e}
	topics := []string{"in"}
	acquired := func(meta []byte) map[assign.TopicPartition]int32 {
		t.Helper()
		var m kmsg.ConsumerMemberMetadata
		if err := m.ReadFrom(meta); err != nil {
			t.Fatal(err)
		}
		sub, err := assign.DecodeSubscription(m.UserData)
		if err != nil {
			t.Fatal(err)
		}
		return sub.Acquired
	}
	tp := func(p int32) assign.TopicPartition { return assign.TopicPartition{Topic: "in", Partition: p} }
	if got, want := acquired(a.JoinGroupMetadata(topics, owns("in:0,2"), 4)), map[assign.TopicPartition]int32{tp(0): 4, tp(2): 4}; !maps.Equal(got, want) {
		t.Errorf("first join: acquired %v, want %v", got, want)
	}
	metaA := a.JoinGroupMetadata(topics, owns("in:0,1,2"), 6)
	if got, want := acquired(metaA), map[assign.TopicPartition]int32{tp(0): 4, tp(1): 6, tp(2): 4}; !maps.Equal(got, want) {
		t.Errorf("second join: acquired %v, want %v", got, want)
	}
	if got, want := acquired(a.JoinGroupMetadata(topics, owns("in:1"), 7)), map[assign.TopicPartition]int32{tp(1): 6}; !maps.Equal(got, want) {
		t.Errorf("after a revoke: acquired %v, want %v", got, want)
	}

	members := []kmsg.JoinGroupResponseMember{
		{MemberID: "a", ProtocolMetadata: metaA},
		{MemberID: "b", ProtocolMetadata: b.JoinGroupMetadata(topics, nil, -1)},
	}
	mb, _, err := a.MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{"in": 3})
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
	// a revokes 1, the partition it took last, for b.
	if want := map[string]string{"a": "in:0,2", "b": ""}; !maps.Equal(got, want) {
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

// TestEndOffsets lists the changelogs' end offsets as the leader does, and
// lists nothing once the engine has stopped: the listing's context ends
// with the stop channel, not with a context kept in the balancer.
func TestEndOffsets(t *testing.T) {
	const partitions = 4
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "app-seen-changelog"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	for _, k := range []string{"a", "b", "c"} {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "app-seen-changelog", Key: []byte(k)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e := &Engine{log: slog.New(slog.DiscardHandler)}
	shapes := []assign.Pipeline{{Name: "count", Inputs: []string{"in"}, Stores: []string{"seen"}, Changelogs: []string{"app-seen-changelog"}}}
	stop := make(chan struct{})
	b := &groupBalancer{e: e, adm: kadm.NewClient(cl), stop: stop}
	ends := b.endOffsets(shapes, map[string]int32{"in": partitions})
	var total int64
	for p := range int32(partitions) {
		total += ends[assign.TopicPartition{Topic: "app-seen-changelog", Partition: p}]
	}
	if len(ends) != partitions || total != 3 {
		t.Errorf("ends %v, want %d partitions holding 3 records", ends, partitions)
	}
	close(stop)
	if ends := b.endOffsets(shapes, map[string]int32{"in": partitions}); ends != nil {
		t.Errorf("after the stop: ends %v, want none", ends)
	}
}
