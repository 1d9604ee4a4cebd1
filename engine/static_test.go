package engine

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func subscription(topics []string, rack string, owned ...int32) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 3
	m.Topics = topics
	if rack != "" {
		m.Rack = &rack
	}
	if len(owned) > 0 {
		o := kmsg.NewConsumerMemberMetadataOwnedPartition()
		o.Topic, o.Partitions = topics[0], owned
		m.OwnedPartitions = append(m.OwnedPartitions, o)
	}
	return m.AppendTo(nil)
}

// TestStaticJoin: a clean stop saves the last join's subscription; the
// next start of the same instance repeats it while the topics and rack are
// unchanged, once, and removes the file; another instance's file, or a
// subscription whose topics changed, gives a fresh join.
func TestStaticJoin(t *testing.T) {
	newEngine := func(dir, instance string) *Engine {
		e := &Engine{cfg: Config{StateDir: dir, ApplicationID: "app", InstanceID: instance}, log: slog.New(slog.DiscardHandler)}
		e.joins.e = e
		if err := os.MkdirAll(dir+"/app", 0o755); err != nil {
			t.Fatal(err)
		}
		return e
	}
	dir := t.TempDir()
	saved := filepath.Join(dir, "app", "static-join.json")
	old := subscription([]string{"in"}, "r1", 0, 1)
	e := newEngine(dir, "a")
	e.joins.metadata("flowstate-v1", old)
	if err := e.saveStaticJoin(7); err != nil {
		t.Fatal(err)
	}

	e = newEngine(dir, "a")
	e.takeStaticJoin()
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("the saved subscription is still there after the start read it: %v", err)
	}
	fresh := subscription([]string{"in"}, "r1")
	if got := e.joins.metadata("flowstate-v1", fresh); !slices.Equal(got, old) {
		t.Error("the first join after the restart did not repeat the saved subscription")
	}
	if got := e.joins.metadata("cooperative-sticky", fresh); !slices.Equal(got, fresh) {
		t.Error("a protocol with nothing saved did not join fresh")
	}
	if e.joins.replay == nil || e.joins.replay.Generation != 7 {
		t.Fatalf("replay %+v, want generation 7 until the first assignment", e.joins.replay)
	}

	// Changed topics: fresh.
	e = newEngine(dir, "a")
	e.joins.last = map[string][]byte{"flowstate-v1": old}
	if err := e.saveStaticJoin(7); err != nil {
		t.Fatal(err)
	}
	e.takeStaticJoin()
	other := subscription([]string{"in", "more"}, "r1")
	if got := e.joins.metadata("flowstate-v1", other); !slices.Equal(got, other) {
		t.Error("a subscription with other topics repeated the saved one")
	}

	// Another instance's file: fresh, and the file is gone.
	e = newEngine(dir, "a")
	e.joins.last = map[string][]byte{"flowstate-v1": old}
	if err := e.saveStaticJoin(7); err != nil {
		t.Fatal(err)
	}
	e = newEngine(dir, "b")
	e.takeStaticJoin()
	if e.joins.replay != nil {
		t.Error("instance b took instance a's saved subscription")
	}
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("another instance's saved subscription was left: %v", err)
	}

	// A dynamic member saves nothing.
	e = newEngine(dir, "")
	e.joins.last = map[string][]byte{"flowstate-v1": old}
	if err := e.saveStaticJoin(7); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("a dynamic member saved its subscription: %v", err)
	}
}
