package restore_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// logRecorder is a slog.Handler that keeps the messages and attributes it
// gets and signals each message on its channel.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	msgs  chan string
}

func newLogRecorder() *logRecorder { return &logRecorder{msgs: make(chan string, 1024)} }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	select {
	case r.msgs <- rec.Message:
	default:
	}
	return nil
}

func (r *logRecorder) find(prefix string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestTruncatedChangelog restores a store whose changelog lost, by
// DeleteRecords, records after the store's offset: rebuild clears the store
// and restores from the log start; fail returns a *TruncatedError naming
// the store and both offsets and leaves the store as it was.
func TestTruncatedChangelog(t *testing.T) {
	for _, policy := range []restore.TruncatedPolicy{restore.TruncatedRebuild, restore.TruncatedFail} {
		t.Run(string(policy), func(t *testing.T) {
			addr, produce := setup(t)
			logs := []restore.Changelog{{Store: 0, Topic: topic, Partition: 1}}
			db, err := state.Open(state.Config{Dir: t.TempDir(), Stores: []string{"counts"}})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			produce([2]string{"old1", "1"}, [2]string{"old2", "1"}) // offsets 0, 1
			if _, err := restore.Restore(t.Context(), restore.Config{Brokers: []string{addr}}, db, logs); err != nil {
				t.Fatal(err)
			}
			// The store is at offset 2. Offsets 2..5 are written and 2..3
			// deleted before the store sees them.
			produce([2]string{"gone1", "1"}, [2]string{"gone2", "1"}, [2]string{"new1", "1"}, [2]string{"new2", "1"})
			deleteRecords(t, addr, 1, 4)

			rec := newLogRecorder()
			res, err := restore.Restore(t.Context(), restore.Config{
				Brokers: []string{addr}, Task: "app/1", Settings: restore.Settings{OnTruncated: policy}, Logger: slog.New(rec),
			}, db, logs)
			if policy == restore.TruncatedFail {
				te, ok := errors.AsType[*restore.TruncatedError](err)
				if !ok || !errors.Is(err, restore.ErrTruncated) {
					t.Fatalf("Restore = %v, want a *TruncatedError", err)
				}
				want := restore.TruncatedError{Task: "app/1", Store: "counts", Topic: topic, Partition: 1, Stored: 2, LogStart: 4}
				if *te != want {
					t.Errorf("error fields %+v, want %+v", *te, want)
				}
				for _, s := range []string{"counts", "offset 4", "offset is 2"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				if got, want := contents(t, db), map[string]string{"old1": "1", "old2": "1"}; !maps.Equal(got, want) {
					t.Errorf("store after a failed restore: %v, want %v", got, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != 2 {
				t.Errorf("rebuild replayed %d records, want 2 (from the log start)", res.Records)
			}
			if got, want := contents(t, db), map[string]string{"new1": "1", "new2": "1"}; !maps.Equal(got, want) {
				t.Errorf("rebuilt store: %v, want %v", got, want)
			}
			line := rec.find("WARN changelog truncated")
			for _, s := range []string{"store=counts", "stored_offset=2", "log_start=4"} {
				if !strings.Contains(line, s) {
					t.Errorf("warning %q does not contain %q", line, s)
				}
			}
		})
	}
}

// deleteRecords deletes the records of the test topic's partition before
// offset to.
func deleteRecords(t *testing.T, addr string, partition int32, to int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	os := kadm.Offsets{}
	os.AddOffset(topic, partition, to, -1)
	resp, err := kadm.NewClient(cl).DeleteRecords(t.Context(), os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
}

// TestProgressAndAcquire checks that a restore waits for Acquire before its
// Begin event, releases at the end, and logs "restore progress" lines while
// it replays: the Batch listener holds the restore until a line is logged.
func TestProgressAndAcquire(t *testing.T) {
	addr, produce := setup(t)
	var kvs [][2]string
	for i := range 2000 {
		kvs = append(kvs, [2]string{"k" + strconv.Itoa(i), "v"})
	}
	produce(kvs...)
	db, err := state.Open(state.Config{Dir: t.TempDir(), Stores: []string{"counts"}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	rec := newLogRecorder()
	var events []string
	held := false
	res, err := restore.Restore(t.Context(), restore.Config{
		Brokers:  []string{addr},
		Task:     "app/1",
		Settings: restore.Settings{FetchMaxBytes: 4 << 10, ProgressInterval: 1}, // progress every tick
		Logger:   slog.New(rec),
		Acquire: func(context.Context) (func(), error) {
			events = append(events, "acquire")
			return func() { events = append(events, "release") }, nil
		},
		Listener: restore.Listener{
			Begin: func(restore.BeginInfo) { events = append(events, "begin") },
			Batch: func(restore.BatchInfo) {
				if held {
					return
				}
				held = true
				for m := range rec.msgs {
					if m == "restore progress" {
						return
					}
				}
			},
			End: func(restore.EndInfo) { events = append(events, "end") },
		},
	}, db, []restore.Changelog{{Store: 0, Topic: topic, Partition: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 2000 {
		t.Errorf("restored %d records, want 2000", res.Records)
	}
	if got := strings.Join(events, ","); got != "acquire,begin,end,release" {
		t.Errorf("events %s, want acquire,begin,end,release", got)
	}
	line := rec.find("INFO restore progress")
	for _, s := range []string{"task=app/1", "restored=", "remaining=", "rate=", "eta="} {
		if !strings.Contains(line, s) {
			t.Errorf("progress line %q does not contain %q", line, s)
		}
	}

	// Nothing to replay: no Acquire.
	events = nil
	if _, err := restore.Restore(t.Context(), restore.Config{
		Brokers: []string{addr},
		Acquire: func(context.Context) (func(), error) { events = append(events, "acquire"); return func() {}, nil },
	}, db, []restore.Changelog{{Store: 0, Topic: topic, Partition: 1}}); err != nil {
		t.Fatal(err)
	}
	if len(events) > 0 {
		t.Errorf("a restore with nothing to replay called Acquire")
	}
}
