package engine_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
)

// TestLargeWritesNeverFailTheCommit runs, under the default limits and
// topics, records whose module writes a value of 1,040,000 bytes (under
// the default max_value_bytes of 1 MiB, over what a default topic takes
// with the key and the framing), emits one, or deletes a key of 70,000
// bytes. Each is refused in the sandbox and handled by on_error: under skip
// every other record is processed once, in order, and no commit fails;
// under fail the task goes FAILED with the refusal, not a produce error.
func TestLargeWritesNeverFailTheCommit(t *testing.T) {
	poison := map[int64]string{13: "bigput", 47: "bigemit", 81: "bigdelete"}
	for _, tc := range []struct {
		name      string
		policy    engine.OnError
		guarantee engine.Guarantee
	}{
		{"skip", engine.OnErrorSkip, engine.AtLeastOnce},
		{"skip under exactly-once", engine.OnErrorSkip, engine.ExactlyOnce},
		{"fail", engine.OnErrorFail, engine.AtLeastOnce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, "in", "out")
			var kvs [][2]string
			for i := range int64(100) {
				v := "v"
				if p, ok := poison[i]; ok {
					v = p
				}
				kvs = append(kvs, [2]string{"k", v})
			}
			a := &app{cfg: engine.Config{
				ApplicationID:  "large",
				Brokers:        []string{c.addr},
				StateDir:       t.TempDir(),
				CommitInterval: 200 * time.Millisecond,
				Guarantee:      tc.guarantee,
				Logger:         testLogger(t),
				Pipelines: []engine.Pipeline{{
					Name:            "p",
					Module:          plugintest.Build(t, "engine/testdata/onerror"),
					Inputs:          []string{"in"},
					Outputs:         []string{"out"},
					Stores:          []string{"seen"},
					MaxBatchRecords: 10,
					OnError:         tc.policy,
					Restart:         engine.Restart{Strategy: engine.RestartNever},
				}},
			}}
			stop := a.start(t)
			a.waitRunning(t, partitions)
			c.produce(t, "in", kvs)
			poll.Until(t, time.Minute, func() error {
				select {
				case err := <-a.failed:
					t.Fatalf("the engine stopped: %v", err)
				default:
				}
				for _, ti := range a.eng.Metrics().Tasks {
					if ti.State != engine.Failed {
						continue
					}
					if tc.policy != engine.OnErrorFail {
						t.Fatalf("task %s FAILED: %s", ti.Task, ti.Error)
					}
					if !strings.Contains(ti.Error, host.ErrOutputRefused.Error()) || !strings.Contains(ti.Error, "max_value_bytes") ||
						!strings.Contains(ti.Error, "offset 10") {
						t.Fatalf("task %s FAILED with %q, want the refused write of the batch at offset 10", ti.Task, ti.Error)
					}
					return nil
				}
				if tc.policy == engine.OnErrorFail {
					return errors.New("no task FAILED")
				}
				if done, _ := c.committedAll(t, "large", []string{"in"}); !done {
					return errors.New("the input was not processed")
				}
				return nil
			})
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			var want, got []string
			n := 0
			for off := range int64(100) {
				if tc.policy == engine.OnErrorFail && off >= 10 {
					break
				}
				if _, bad := poison[off]; !bad {
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
		})
	}
}

// TestLimitsOverTopicStopTheStart: a max_value_bytes set above what the
// output topic takes stops the start with an error naming the key.
func TestLimitsOverTopicStopTheStart(t *testing.T) {
	c := newCluster(t, "in", "out")
	e, err := engine.New(engine.Config{
		ApplicationID: "over",
		Brokers:       []string{c.addr},
		StateDir:      t.TempDir(),
		Pipelines: []engine.Pipeline{{
			Name: "p", Module: plugintest.Build(t, "engine/testdata/onerror"), Inputs: []string{"in"}, Outputs: []string{"out"},
			Stores: []string{"seen"}, Limits: host.Limits{MaxValueBytes: 2 << 20},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "pipelines.p.limits.max_value_bytes: 2097152") ||
		!strings.Contains(err.Error(), "max.message.bytes 1048588 of topic out") {
		t.Fatalf("Run = %v, want an error naming pipelines.p.limits.max_value_bytes and topic out", err)
	}
}

// TestDeadLetterTooLargeForTheProducer dead-letters an input record that
// fits its topic but, with the dead-letter headers, not the producer: the
// record goes to the dead-letter topic without its value, and the records
// after it are processed; no commit fails.
func TestDeadLetterTooLargeForTheProducer(t *testing.T) {
	c := newCluster(t, "in", "out")
	big, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ProducerBatchMaxBytes(1048588))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	a := &app{cfg: engine.Config{
		ApplicationID:  "dlq",
		Brokers:        []string{c.addr},
		StateDir:       t.TempDir(),
		CommitInterval: 200 * time.Millisecond,
		Logger:         testLogger(t),
		Pipelines: []engine.Pipeline{{
			Name: "p", Module: plugintest.Build(t, "engine/testdata/onerror"), Inputs: []string{"in"}, Outputs: []string{"out"},
			Stores: []string{"seen"}, OnError: engine.OnErrorDeadLetter, Restart: engine.Restart{Strategy: engine.RestartNever},
		}},
	}}
	stop := a.start(t)
	a.waitRunning(t, partitions)
	const size = 1_048_450
	recs := []*kgo.Record{
		{Topic: "in", Key: []byte("k"), Value: []byte("v")},
		{Topic: "in", Key: []byte("k"), Value: make([]byte, size)},
		{Topic: "in", Key: []byte("k"), Value: []byte("v")},
	}
	if err := big.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		for _, ti := range a.eng.Metrics().Tasks {
			if ti.State == engine.Failed {
				t.Fatalf("task %s FAILED: %s", ti.Task, ti.Error)
			}
		}
		if done, _ := c.committedAll(t, "dlq", []string{"in"}); !done {
			return errors.New("the input was not processed")
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	dead := c.readAll(t, "dlq-p-dlq")
	if len(dead) != 1 {
		t.Fatalf("%d dead-letter records, want 1", len(dead))
	}
	hs := map[string]string{}
	for _, h := range dead[0].Headers {
		hs[h.Key] = string(h.Value)
	}
	if dead[0].Value != nil || hs[engine.HeaderValueDropped] != strconv.Itoa(size) || hs[engine.HeaderOffset] != "1" ||
		!strings.Contains(hs[engine.HeaderError], "max_value_bytes") {
		t.Errorf("dead-letter record: value of %d bytes, headers %q", len(dead[0].Value), hs)
	}
	var got []string
	for _, r := range c.readAll(t, "out") {
		got = append(got, string(r.Value))
	}
	if want := []string{"0:1", "2:2"}; !slices.Equal(got, want) {
		t.Errorf("outputs %v, want %v", got, want)
	}
}
