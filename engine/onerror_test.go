package engine_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
	"github.com/flowstate/flowstate/state"
)

// TestErrorPolicy runs 100 records of one key, in batches of 10, with
// poison records in the middle of a batch, under each error policy. Under
// skip and dead_letter every other record is processed exactly once, in
// order: the outputs, the store and the dead-letter topic are checked
// record by record.
func TestErrorPolicy(t *testing.T) {
	tests := []struct {
		name      string
		policy    engine.OnError
		guarantee engine.Guarantee
		poison    map[int64]string // offset -> value
		why       []string         // per poison record, in the dead-letter record's error
	}{
		{name: "skip a guest error", policy: engine.OnErrorSkip, poison: map[int64]string{57: "poison"}},
		{name: "skip a module exit", policy: engine.OnErrorSkip, poison: map[int64]string{57: "exit"}},
		{name: "skip a timeout and a panic in one batch", policy: engine.OnErrorSkip, poison: map[int64]string{52: "loop", 57: "panic"}},
		{name: "dead-letter a guest error", policy: engine.OnErrorDeadLetter, poison: map[int64]string{57: "poison"},
			why: []string{"poison record at offset 57"}},
		{name: "dead-letter a limit hit and an exit", policy: engine.OnErrorDeadLetter, poison: map[int64]string{3: "huge", 57: "exit"},
			why: []string{host.ErrOutputRefused.Error() + ": emit to out", host.ErrExit.Error()}},
		{name: "dead-letter a trap under exactly-once", policy: engine.OnErrorDeadLetter, guarantee: engine.ExactlyOnce,
			poison: map[int64]string{58: "exit"}, why: []string{host.ErrExit.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case has its own broker; most of a case is waiting
			c := newCluster(t, "in", "out")
			var kvs [][2]string
			for i := range int64(100) {
				v := "v"
				if p, ok := tt.poison[i]; ok {
					v = p
				}
				kvs = append(kvs, [2]string{"k", v}) // one key: one partition, in order
			}
			dir := t.TempDir()
			a := &app{cfg: engine.Config{
				ApplicationID:  "onerror",
				Brokers:        []string{c.addr},
				StateDir:       dir,
				CommitInterval: 200 * time.Millisecond,
				Guarantee:      tt.guarantee,
				Logger:         testLogger(t),
				Pipelines: []engine.Pipeline{{
					Name:            "p",
					Module:          plugintest.Build(t, "engine/testdata/onerror"),
					Inputs:          []string{"in"},
					Outputs:         []string{"out"},
					Stores:          []string{"seen"},
					MaxBatchRecords: 10,
					OnError:         tt.policy,
					Limits:          host.Limits{CallTimeout: 500 * time.Millisecond, MaxValueBytes: 1024},
				}},
			}}
			var eng *engine.Engine
			a.setup = func(e *engine.Engine) { eng = e }
			stop := a.start(t)
			// Produced once the tasks run: a fetch already waiting returns
			// at once, where the first one would wait for its maximum.
			a.waitRunning(t, partitions)
			c.produce(t, "in", kvs)
			poll.Until(t, time.Minute, func() error {
				select {
				case err := <-a.failed:
					t.Fatalf("the engine stopped: %v", err)
				default:
				}
				if done, _ := c.committedAll(t, "onerror", []string{"in"}); !done {
					return errors.New("the input was not processed")
				}
				return nil
			})
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			part := c.readAll(t, "in")[0].Partition

			// The counters: every record processed but the poison, each
			// poison record skipped or dead-lettered, and at least one
			// failed batch with the policy as its outcome, none with fail.
			pm := eng.Metrics().Pipelines[0]
			skipped, deadLettered := int64(len(tt.poison)), int64(0)
			if tt.policy == engine.OnErrorDeadLetter {
				skipped, deadLettered = 0, skipped
			}
			if pm.Records < int64(100-len(tt.poison)) || pm.Emitted < int64(100-len(tt.poison)) || pm.Skipped != skipped || pm.DeadLettered != deadLettered ||
				pm.FailedBatches[tt.policy] < 1 || pm.FailedBatches[engine.OnErrorFail] != 0 {
				t.Errorf("metrics: records %d, emitted %d, skipped %d, dead-lettered %d, failed batches %v; want %d good records, %d skipped, %d dead-lettered, failures under %s",
					pm.Records, pm.Emitted, pm.Skipped, pm.DeadLettered, pm.FailedBatches, 100-len(tt.poison), skipped, deadLettered, tt.policy)
			}

			// Outputs: one per good record, in offset order, counting only
			// the good records.
			var want, got []string
			for off, n := int64(0), 0; off < 100; off++ {
				if _, bad := tt.poison[off]; !bad {
					n++
					want = append(want, fmt.Sprintf("%d:%d", off, n))
				}
			}
			for _, r := range c.readAll(t, "out") {
				got = append(got, string(r.Value))
			}
			if !slices.Equal(got, want) {
				t.Errorf("outputs\n got %v\nwant %v", got, want)
			}

			// The store: the count and one entry per good record.
			db, err := state.Open(state.Config{Dir: filepath.Join(dir, "onerror", "p-"+strconv.Itoa(int(part))), Stores: []string{"seen"}})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			v, _, err := db.Get(0, []byte("k"))
			if err != nil || len(v) != 8 || binary.BigEndian.Uint64(v) != uint64(100-len(tt.poison)) {
				t.Errorf("count = %x (%v), want %d", v, err, 100-len(tt.poison))
			}
			for off := range int64(100) {
				v, ok, err := db.Get(0, []byte("off/"+strconv.FormatInt(off, 10)))
				_, bad := tt.poison[off]
				if err != nil || ok == bad || (ok && string(v) != "v") {
					t.Errorf("off/%d = %q, %v, %v; poison %v", off, v, ok, err, bad)
				}
			}

			// The dead-letter topic: each poison record with its headers.
			dlq := "onerror-p-dlq"
			topics, err := c.adm.ListTopics(t.Context(), dlq)
			if err != nil {
				t.Fatal(err)
			}
			if tt.policy != engine.OnErrorDeadLetter {
				if topics.Has(dlq) {
					t.Errorf("%s created under policy %s", dlq, tt.policy)
				}
				return
			}
			dead := c.readAll(t, dlq)
			poisoned := make([]int64, 0, len(tt.poison))
			for off := range tt.poison {
				poisoned = append(poisoned, off)
			}
			slices.Sort(poisoned)
			if len(dead) != len(poisoned) {
				t.Fatalf("%d dead-letter records, want %d", len(dead), len(poisoned))
			}
			for k, r := range dead {
				off := poisoned[k]
				hs := map[string]string{}
				for _, h := range r.Headers {
					hs[h.Key] = string(h.Value)
				}
				if string(r.Key) != "k" || string(r.Value) != tt.poison[off] ||
					hs[engine.HeaderTopic] != "in" || hs[engine.HeaderPartition] != strconv.Itoa(int(part)) ||
					hs[engine.HeaderOffset] != strconv.FormatInt(off, 10) || !strings.Contains(hs[engine.HeaderError], tt.why[k]) {
					t.Errorf("dead-letter record %d: key %q value %q headers %q; want offset %d, error with %q",
						k, r.Key, r.Value, hs, off, tt.why[k])
				}
			}
		})
	}
}

// TestErrorPolicyValidate checks the on_error default, its validation and
// the dead-letter topic's name. Policy fail is TestPoisonRecordFailsTask.
func TestErrorPolicyValidate(t *testing.T) {
	cfg := engine.Config{ApplicationID: "a", Brokers: []string{"b:1"},
		Pipelines: []engine.Pipeline{{Name: "p", Module: "m.wasm", Inputs: []string{"in"}, OnError: "retry"}}}
	cfg.EnsureDefaults()
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `pipelines.p.on_error: "retry" is not fail, skip or dead_letter`) {
		t.Fatalf("Validate = %v", err)
	}
	cfg.Pipelines[0].OnError = ""
	cfg.EnsureDefaults()
	if cfg.Pipelines[0].OnError != engine.OnErrorFail {
		t.Fatalf("default on_error %q", cfg.Pipelines[0].OnError)
	}
	if got := cfg.DeadLetterTopic("p"); got != "a-p-dlq" {
		t.Fatalf("DeadLetterTopic = %q", got)
	}
}
