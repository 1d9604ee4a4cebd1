package engine

import (
	"log/slog"
	"testing"
)

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
