package restore

import (
	"context"
	"fmt"
	"maps"
	"math"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/state"
)

// TailInfo describes a standby's store after one applied batch.
type TailInfo struct {
	Task string
	// Next is the store's next changelog offset per store name, for every
	// changelog of the tail.
	Next map[string]int64
	// Lag is the changelog offsets the store is behind, summed over the
	// changelogs, as of the last fetch of each (its high watermark, or its
	// last stable offset under ReadCommitted).
	Lag int64
	// Records counts the records applied since Tail began, the catch-up
	// restore included.
	Records int64
}

// Tail keeps db a live copy of its changelogs until ctx ends: it restores
// what db lacks (Restore, with its truncation and SST handling), then goes
// on fetching and applies every fetched batch with state.DB.ApplyChangelog,
// the records and the changelog offset in one WriteBatch, so that the store
// is consistent as of some changelog offset at every moment. It is the loop
// of a standby replica. applied, when set, is called from Tail's goroutine
// after the catch-up and after every batch.
//
// Tail returns nil when ctx ends, and an error when a fetch fails, such as
// an offset no longer in the changelog (records deleted while tailing: the
// caller calls Tail again, whose Restore then applies cfg.OnTruncated).
// db's write buffer must be empty; db is flushed before Tail returns.
func Tail(ctx context.Context, cfg Config, db *state.DB, logs []Changelog, applied func(TailInfo)) (err error) {
	cfg.ensureDefaults()
	res, err := Restore(ctx, cfg, db, logs)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if len(logs) == 0 {
		<-ctx.Done()
		return nil
	}
	defer func() {
		// The batches were written without the WAL: a flush makes them
		// durable, so that a store closed now reopens where it stood.
		if ferr := db.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("tail %s: %w", cfg.Task, ferr)
		}
	}()
	stored, err := db.Offsets()
	if err != nil {
		return fmt.Errorf("tail %s: read offsets: %w", cfg.Task, err)
	}
	stores := db.Stores()
	info := TailInfo{Task: cfg.Task, Next: map[string]int64{}, Records: res.Records}
	byTopic := map[string]Changelog{}
	consume := map[string]map[int32]kgo.Offset{}
	lag := map[string]int64{}
	for _, l := range logs {
		if l.Store < 0 || l.Store >= len(stores) {
			return fmt.Errorf("tail %s: changelog %s: unknown store %d", cfg.Task, l.Topic, l.Store)
		}
		next := stored.Changelog[stores[l.Store]]
		info.Next[stores[l.Store]] = next
		byTopic[l.Topic] = l
		consume[l.Topic] = map[int32]kgo.Offset{l.Partition: kgo.NewOffset().At(next)}
	}
	if applied != nil {
		applied(TailInfo{Task: info.Task, Next: maps.Clone(info.Next), Records: info.Records}) // caught up as of the restore's listing
	}

	cl, err := kgo.NewClient(cfg.clientOpts(
		// An offset deleted under the tail must surface, not be skipped
		// over by a reset: skipping would leave a silent gap.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.ConsumePartitions(consume),
	)...)
	if err != nil {
		return fmt.Errorf("tail %s: %w", cfg.Task, err)
	}
	defer cl.Close()
	cfg.Logger.Info("standby tailing", "task", cfg.Task, "offsets", info.Next)

	var changes []state.Change
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fetches.EachError(func(topic string, part int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("tail %s: fetch %s partition %d: %w", cfg.Task, topic, part, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		var aerr error
		batches := 0
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			l, ok := byTopic[fp.Topic]
			if aerr != nil || !ok || fp.Partition != l.Partition {
				return
			}
			name := stores[l.Store]
			var next int64
			changes, next = appendChanges(changes[:0], fp.Records, l.Store, info.Next[name], math.MaxInt64)
			end := fp.HighWatermark
			if cfg.ReadCommitted {
				end = fp.LastStableOffset
			}
			if next > info.Next[name] {
				if err := db.ApplyChangelog(l.Store, changes, next); err != nil {
					aerr = fmt.Errorf("tail %s: apply %s: %w", cfg.Task, fp.Topic, err)
					return
				}
				info.Next[name] = next
				info.Records += int64(len(changes))
				batches++
			}
			lag[fp.Topic] = max(end-next, 0)
		})
		if aerr != nil {
			return aerr
		}
		if batches > 0 {
			info.Lag = 0
			for _, n := range lag {
				info.Lag += n
			}
			cfg.Logger.Debug("standby batch", "task", cfg.Task, "records", info.Records, "lag", info.Lag)
			if applied != nil {
				applied(TailInfo{Task: info.Task, Next: maps.Clone(info.Next), Lag: info.Lag, Records: info.Records})
			}
		}
	}
}
