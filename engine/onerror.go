package engine

import (
	"context"
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/field"
)

// OnError is what a pipeline does with a record its module fails on.
type OnError string

// The error policies. Whatever the policy, a failed batch has none of its
// writes or outputs applied (the host rolls the batch back) and a guest that
// trapped, timed out or exited is replaced by a fresh instance.
const (
	// OnErrorFail stops the task with the error and the batch's offset;
	// nothing past the batch is committed. The default.
	OnErrorFail OnError = "fail"
	// OnErrorSkip runs the failed batch again in halves until the records
	// that fail on their own are found, processes every other record
	// normally, and skips those, logging each.
	OnErrorSkip OnError = "skip"
	// OnErrorDeadLetter is OnErrorSkip, writing each failing record to the
	// pipeline's dead-letter topic (Config.DeadLetterTopic) with the
	// Header* headers added.
	OnErrorDeadLetter OnError = "dead_letter"
)

// Headers added to a dead-letter record, after the record's own.
const (
	HeaderError     = "flowstate.error"     // why the record failed: the guest's error
	HeaderTopic     = "flowstate.topic"     // the input topic
	HeaderPartition = "flowstate.partition" // the input partition, decimal
	HeaderOffset    = "flowstate.offset"    // the input offset, decimal
	// HeaderValueDropped is set, to the value's length in decimal, on a
	// dead-letter record whose value was dropped because the record with
	// the headers above was over what the producer writes.
	HeaderValueDropped = "flowstate.value_dropped"
)

// recordSize bounds the bytes of a record batch holding one record.
func recordSize(key, value []byte, hs []abi.Header) int {
	n := len(key) + len(value) + recordOverhead
	for _, h := range hs {
		n += len(h.Key) + len(h.Value) + 10 // two varint lengths
	}
	return n
}

// maxErrorHeader caps HeaderError: a trap's error carries the guest's stack.
const maxErrorHeader = 4 << 10

func (p OnError) valid() bool {
	return p == OnErrorFail || p == OnErrorSkip || p == OnErrorDeadLetter
}

// DeadLetterTopic returns the dead-letter topic of a pipeline,
// <application_id>-<pipeline>-dlq. The engine creates it when missing, with
// the partition count of the pipeline's inputs.
func (c *Config) DeadLetterTopic(pipeline string) string {
	return c.ApplicationID + "-" + pipeline + "-dlq"
}

// isolatable reports whether a batch failure is the guest's, so that the
// failing records can be looked for: a guest error, a trap, a timeout, an
// exit, a refused write or emit, a batch over the guest's memory. A host
// failure (INTERNAL) or the task's context ending is not: no record is
// skipped for those.
func isolatable(err error) bool {
	_, guest := errors.AsType[*host.GuestError](err)
	return guest && !errors.Is(err, host.ErrInternal)
}

// isolate handles a batch that failed with err under the skip and
// dead-letter policies. It runs the batch's records again in halves,
// recursively and in order, so that every record that does not fail on its
// own is processed (its outputs appended to t.outs) and every record that
// does is rejected. Each half is one guest call, atomic like every batch
// (host.Instance.Process takes the write buffer's savepoint), so a failure
// that is not the guest's leaves exactly the records before it done: done
// is their count, len(recs) when the batch is done.
func (t *task) isolate(ctx context.Context, recs []*kgo.Record, err error) (done int, _ error) {
	t.log.Warn("batch failed, looking for the failing records", "records", len(recs),
		"topic", recs[0].Topic, "offset", recs[0].Offset, "err", err)
	t.outs = t.outs[:0]
	return t.bisect(ctx, recs, 0, len(recs), err)
}

// bisect processes recs[lo:hi] (and t.recs[lo:hi], their ABI form), which
// failed together with err. It returns hi, or the index of the first record
// not done and the error that stopped it.
func (t *task) bisect(ctx context.Context, recs []*kgo.Record, lo, hi int, err error) (int, error) {
	if hi-lo == 1 {
		t.reject(recs[lo], err)
		return hi, nil
	}
	mid := lo + (hi-lo)/2
	for _, half := range [][2]int{{lo, mid}, {mid, hi}} {
		var herr error
		t.outs, herr = t.call(ctx, t.recs[half[0]:half[1]], t.outs)
		switch {
		case herr == nil:
		case !isolatable(herr):
			return half[0], herr
		default:
			if at, err := t.bisect(ctx, recs, half[0], half[1], herr); err != nil {
				return at, err
			}
		}
	}
	return hi, nil
}

// reject skips r, or queues it for the dead-letter topic, after it failed
// on its own with err.
func (t *task) reject(r *kgo.Record, err error) {
	if t.pl.cfg.OnError != OnErrorDeadLetter {
		t.pl.count.skipped.Add(1)
		t.log.Warn("record skipped", "topic", r.Topic, "offset", r.Offset, "err", err)
		return
	}
	t.pl.count.deadLettered.Add(1)
	t.dlq++
	msg := err.Error()
	if len(msg) > maxErrorHeader {
		msg = msg[:maxErrorHeader]
	}
	hs := make([]abi.Header, 0, len(r.Headers)+4)
	for _, h := range r.Headers {
		hs = append(hs, abi.Header{Key: h.Key, Value: h.Value})
	}
	hs = append(hs,
		abi.Header{Key: HeaderError, Value: []byte(msg)},
		abi.Header{Key: HeaderTopic, Value: []byte(r.Topic)},
		abi.Header{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		abi.Header{Key: HeaderOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
	)
	dlq := t.env.cfg.DeadLetterTopic(t.pl.cfg.Name)
	value := r.Value
	if max := t.env.maxRecord; max > 0 && recordSize(r.Key, value, hs) > max {
		// The input record fit its topic, but with the headers added it
		// is over what the producer writes: dead-letter it without its
		// value (its topic, partition and offset say where it is), rather
		// than fail every commit after it.
		hs = append(hs[:len(hs):len(hs)], abi.Header{Key: HeaderValueDropped, Value: strconv.AppendInt(nil, int64(len(value)), 10)})
		value = nil
		if recordSize(r.Key, nil, hs) > max {
			hs = hs[len(r.Headers):] // its own headers too
		}
	}
	t.outs = append(t.outs, host.Output{Topic: dlq, Key: r.Key, Value: value, Headers: hs})
	t.log.Warn("record dead-lettered", "topic", r.Topic, "offset", r.Offset, "dlq", dlq, "err", err)
}

// validate checks a pipeline's on_error; the *field.Error it returns has an
// empty key, for Config.Validate to name.
func (p OnError) validate() error {
	if p.valid() {
		return nil
	}
	return field.Errorf("", "%q is not %s, %s or %s", p, OnErrorFail, OnErrorSkip, OnErrorDeadLetter)
}
