package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/state"
)

// Changelog names the changelog partition of one store.
type Changelog struct {
	Store     int    // the store's ID in the task's state.DB
	Topic     string // the compacted changelog topic
	Partition int32
}

// Config configures a restore.
type Config struct {
	// Brokers are the seed brokers of the restore client.
	Brokers []string
	// ClientOpts are extra options for the restore client (TLS, SASL).
	ClientOpts []kgo.Opt
	// FetchMaxBytes bounds one fetch response. Default 64 MiB.
	FetchMaxBytes int32
	// ReadCommitted reads the changelogs read_committed and restores up to
	// their last stable offsets: under exactly-once, records of aborted or
	// still open transactions are not the store's.
	ReadCommitted bool
	// Task names the task in logs and events, such as "wordcount/3".
	Task string
	// Logger receives begin and end lines. Default: discard.
	Logger *slog.Logger
	// Listener receives progress events; its nil fields are skipped.
	Listener Listener
	// OnTruncated is what to do when records after a store's offset were
	// deleted from its changelog. Default TruncatedRebuild.
	OnTruncated TruncatedPolicy
	// ProgressInterval is the period of the "restore progress" log lines
	// while records are replayed. Default DefaultProgressInterval; negative
	// turns them off.
	ProgressInterval time.Duration
	// Acquire, when set, is called once the changelogs' offsets are listed
	// and only if there is something to replay, before the Begin event. It
	// may block (the engine bounds how many tasks replay at once with it);
	// an error ends the restore. Release is called when the restore ends.
	Acquire func(ctx context.Context) (release func(), err error)
}

// Listener receives restore progress. Each non-nil function is called from
// the restoring goroutine, so it must not block for long.
type Listener struct {
	Begin func(BeginInfo)
	Batch func(BatchInfo)
	End   func(EndInfo)
}

// BeginInfo describes a restore about to read its changelogs.
type BeginInfo struct {
	Task string
	// Start and End are the offsets to replay per changelog topic, [Start, End).
	Start, End map[string]int64
	// Remaining is the number of offsets to replay, summed over changelogs.
	Remaining int64
}

// BatchInfo describes one applied batch.
type BatchInfo struct {
	Task      string
	Topic     string
	Records   int   // records in this batch
	Restored  int64 // records so far, all changelogs
	Remaining int64 // offsets left, all changelogs
	Rate      float64
}

// EndInfo describes a finished restore.
type EndInfo struct {
	Task     string
	Restored int64
	Took     time.Duration
	Err      error
}

// Result is what a restore did.
type Result struct {
	// Records is the number of changelog records replayed into the stores.
	Records int64
	// Took is the restore's wall time.
	Took time.Duration
}

// Restore replays each changelog from the offset recorded in db to the
// changelog's current end. db's write buffer must be empty.
func Restore(ctx context.Context, cfg Config, db *state.DB, logs []Changelog) (Result, error) {
	begin := time.Now()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FetchMaxBytes == 0 {
		cfg.FetchMaxBytes = 64 << 20
	}
	if err := cfg.OnTruncated.Validate(); err != nil {
		return Result{}, fmt.Errorf("restore %s: on_truncated: %w", cfg.Task, err)
	}
	if len(logs) == 0 {
		return Result{}, nil
	}
	stored, err := db.Offsets()
	if err != nil {
		return Result{}, fmt.Errorf("restore %s: read offsets: %w", cfg.Task, err)
	}
	stores := db.Stores()

	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(cfg.FetchMaxBytes),
		kgo.KeepControlRecords(),
	}, cfg.ClientOpts...)
	if cfg.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return Result{}, fmt.Errorf("restore %s: %w", cfg.Task, err)
	}
	defer cl.Close()

	bounds, err := listBounds(ctx, kadm.NewClient(cl), logs, cfg.ReadCommitted)
	if err != nil {
		return Result{}, fmt.Errorf("restore %s: %w", cfg.Task, err)
	}

	plans := map[string]*plan{}
	begin0 := BeginInfo{Task: cfg.Task, Start: map[string]int64{}, End: map[string]int64{}}
	for _, l := range logs {
		if l.Store < 0 || l.Store >= len(stores) {
			return Result{}, fmt.Errorf("restore %s: changelog %s: unknown store %d", cfg.Task, l.Topic, l.Store)
		}
		b := bounds[l.Topic]
		name := stores[l.Store]
		next := stored.Changelog[name]
		if next > 0 && next < b.start {
			// Records the store never saw were deleted from the changelog
			// (DeleteRecords or retention): resuming at the log start
			// would leave a gap.
			if err := truncated(cfg, db, l, name, next, b.start); err != nil {
				return Result{}, err
			}
		}
		if next < b.start {
			next = b.start
		}
		if next >= b.end {
			continue
		}
		plans[l.Topic] = &plan{log: l, next: next, end: b.end}
		begin0.Start[l.Topic] = next
		begin0.End[l.Topic] = b.end
		begin0.Remaining += b.end - next
	}
	if len(plans) > 0 && cfg.Acquire != nil {
		release, err := cfg.Acquire(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("restore %s: %w", cfg.Task, err)
		}
		defer release()
		begin = time.Now() // Took and the rate count the replay, not the wait
	}
	if len(plans) > 0 {
		cfg.Logger.Info("restore begin", "task", cfg.Task, "offsets", begin0.Remaining)
	}
	if cfg.Listener.Begin != nil {
		cfg.Listener.Begin(begin0)
	}
	var res Result
	if len(plans) > 0 {
		var plog *progressLog
		if cfg.ProgressInterval >= 0 {
			plog = startProgressLog(cfg.Logger, cfg.Task, begin0.Remaining, begin, cmp.Or(cfg.ProgressInterval, DefaultProgressInterval))
			batch := cfg.Listener.Batch
			cfg.Listener.Batch = func(b BatchInfo) {
				plog.batch(b)
				if batch != nil {
					batch(b)
				}
			}
		}
		res, err = replay(ctx, cfg, db, cl, plans, begin0.Remaining, begin)
		if plog != nil {
			plog.close()
		}
		if err == nil {
			err = db.Flush()
		}
	}
	res.Took = time.Since(begin)
	if err != nil {
		err = fmt.Errorf("restore %s: %w", cfg.Task, err)
	}
	if cfg.Listener.End != nil {
		cfg.Listener.End(EndInfo{Task: cfg.Task, Restored: res.Records, Took: res.Took, Err: err})
	}
	if err != nil {
		return res, err
	}
	cfg.Logger.Info("restore done", "task", cfg.Task, "records", res.Records, "took", res.Took.Round(time.Millisecond))
	// Every task start logs its restore, also when there was nothing to
	// replay: a restart that replays 0 records is the point of the design.
	return res, nil
}

type bound struct{ start, end int64 }

// plan is where one changelog's replay stands and ends.
type plan struct {
	log       Changelog
	next, end int64
}

func listBounds(ctx context.Context, adm *kadm.Client, logs []Changelog, committed bool) (map[string]bound, error) {
	topics := make([]string, 0, len(logs))
	for _, l := range logs {
		topics = append(topics, l.Topic)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	list := adm.ListEndOffsets
	if committed {
		list = adm.ListCommittedOffsets // the last stable offsets
	}
	ends, err := list(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	out := map[string]bound{}
	for _, l := range logs {
		s, ok1 := starts.Lookup(l.Topic, l.Partition)
		e, ok2 := ends.Lookup(l.Topic, l.Partition)
		switch {
		case !ok1 || !ok2:
			return nil, fmt.Errorf("changelog %s partition %d: %w", l.Topic, l.Partition, ErrNoPartition)
		case s.Err != nil:
			return nil, fmt.Errorf("changelog %s partition %d: %w", l.Topic, l.Partition, s.Err)
		case e.Err != nil:
			return nil, fmt.Errorf("changelog %s partition %d: %w", l.Topic, l.Partition, e.Err)
		}
		out[l.Topic] = bound{start: s.Offset, end: e.Offset}
	}
	return out, nil
}

// ErrNoPartition is returned when a changelog lacks the task's partition.
var ErrNoPartition = errors.New("restore: changelog partition does not exist")

func replay(ctx context.Context, cfg Config, db *state.DB, cl *kgo.Client, plans map[string]*plan, remaining int64, begin time.Time) (Result, error) {
	var res Result
	consume := map[string]map[int32]kgo.Offset{}
	for topic, p := range plans {
		consume[topic] = map[int32]kgo.Offset{p.log.Partition: kgo.NewOffset().At(p.next)}
	}
	cl.AddConsumePartitions(consume)
	left := len(plans)
	var changes []state.Change
	for left > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var ferr error
		fetches.EachError(func(topic string, part int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("fetch %s partition %d: %w", topic, part, err)
			}
		})
		if ferr != nil {
			return res, ferr
		}
		var aerr error
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			p := plans[fp.Topic]
			if aerr != nil || p == nil || p.next >= p.end || len(fp.Records) == 0 {
				return
			}
			changes = changes[:0]
			next := p.next
			for _, r := range fp.Records {
				if r.Offset >= p.end {
					break
				}
				next = r.Offset + 1
				if r.Attrs.IsControl() {
					continue // a transaction marker: an offset, not a record
				}
				changes = append(changes, state.Change{Store: p.log.Store, Key: r.Key, Value: r.Value, Delete: r.Value == nil})
			}
			if next == p.next {
				return
			}
			if err := db.ApplyChangelog(p.log.Store, changes, next); err != nil {
				aerr = fmt.Errorf("apply %s: %w", fp.Topic, err)
				return
			}
			remaining -= next - p.next
			p.next = next
			res.Records += int64(len(changes))
			if p.next >= p.end {
				left--
			}
			if cfg.Listener.Batch != nil {
				cfg.Listener.Batch(BatchInfo{
					Task: cfg.Task, Topic: fp.Topic, Records: len(changes), Restored: res.Records,
					Remaining: remaining, Rate: float64(res.Records) / time.Since(begin).Seconds(),
				})
			}
		})
		if aerr != nil {
			return res, aerr
		}
	}
	return res, nil
}
