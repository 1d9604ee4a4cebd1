package crashpoint

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// The points, each reached by one Hit call. Their names are the spec's.
const (
	// CommitProduced: a commit's changelog and output records are
	// acknowledged, its RocksDB batch is not written (at-least-once: one
	// task's commit; exactly-once: every task prepared, the transaction
	// not ended).
	CommitProduced = "commit.produced"
	// CommitStored: at-least-once, a task's RocksDB batch with the
	// changelog and input offsets is written, the group offsets are not
	// committed. (Exactly-once reaches it too, in each task's write after
	// the transaction committed.)
	CommitStored = "commit.stored"
	// CommitEnded: exactly-once, the transaction is committed, the tasks'
	// RocksDB batches are not written.
	CommitEnded = "commit.ended"
	// RestoreSSTChunk: a restore rebuilding a store from nothing has
	// ingested one SST chunk and written its offset, the next chunk is not
	// ingested.
	RestoreSSTChunk = "restore.sst-chunk"
)

func known(name string) bool {
	switch name {
	case CommitProduced, CommitStored, CommitEnded, RestoreSSTChunk:
		return true
	}
	return false
}

// Set is the crash points a process is armed with; a nil *Set is disarmed
// and its Hit does nothing. It is built once, from a test-only setting, and
// passed down in config structs. Hit may be called from many goroutines.
type Set struct {
	w      io.Writer
	points map[string]*point // fixed by Parse
}

type point struct {
	at   int64 // die at this hit, counting from 1
	hits atomic.Int64
}

// Parse returns the Set armed by spec, a comma-separated list of
// NAME[@N]: die the Nth time point NAME is reached (default 1), so that a
// run first makes progress. An empty spec returns nil (disarmed). Before
// dying, a point writes "crashpoint: NAME" to w.
func Parse(spec string, w io.Writer) (*Set, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	s := &Set{w: w, points: map[string]*point{}}
	for _, item := range strings.Split(spec, ",") {
		name, count, hasCount := strings.Cut(strings.TrimSpace(item), "@")
		if !known(name) {
			return nil, fmt.Errorf("crash point %q: unknown (want %s, %s, %s or %s)", name, CommitProduced, CommitStored, CommitEnded, RestoreSSTChunk)
		}
		at := int64(1)
		if hasCount {
			n, err := strconv.ParseInt(count, 10, 64)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("crash point %q: want NAME@N with N at least 1", item)
			}
			at = n
		}
		s.points[name] = &point{at: at}
	}
	return s, nil
}

// Hit marks that the process reached point name. When the Set is armed to
// die there at this hit, it writes "crashpoint: NAME" and SIGKILLs its own
// process, like kill -9: no deferred function, no flush, nothing after the
// point runs.
func (s *Set) Hit(name string) {
	if s == nil {
		return
	}
	p := s.points[name]
	if p == nil || p.hits.Add(1) != p.at {
		return
	}
	fmt.Fprintf(s.w, "crashpoint: %s\n", name)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way; this goroutine goes no further
}
