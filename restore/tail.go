package restore

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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

// A Tailer keeps standby stores live copies of their changelogs, with one
// Kafka client for all of them: Tail catches a store up (Restore, with its
// truncation and SST handling) and then registers its changelog partitions
// with the client; Run fetches every registered partition and applies each
// fetched batch to its store with state.DB.ApplyChangelog, the records and
// the changelog offset in one WriteBatch, so that the store is consistent
// as of some changelog offset at every moment. A process with hundreds of
// standby tasks holds one fetch session, not hundreds; the batches are
// applied one at a time, on Run's goroutine.
type Tailer struct {
	readCommitted bool
	cl            *kgo.Client
	closeOnce     sync.Once
	// ran is closed when Run returns; started is set when Run begins.
	ran     chan struct{}
	started atomic.Bool

	mu   sync.Mutex
	subs map[tailPartition]*tailSub
}

type tailPartition struct {
	topic     string
	partition int32
}

// tailSub is one Tail's registration.
type tailSub struct {
	cfg     Config
	db      *state.DB
	stores  []string
	logs    map[tailPartition]Changelog
	applied func(TailInfo)
	errc    chan error // the first fetch or apply error; Tail returns it

	// mu is held while a batch is applied to db; closed, set under it by
	// Tail as it ends, stops further batches before db is flushed and
	// handed back.
	mu      sync.Mutex
	closed  bool
	info    TailInfo
	lag     map[string]int64 // by topic
	changes []state.Change
}

// tailFetchMaxWait is how long the broker may hold a tailer's fetch.
const tailFetchMaxWait = 500 * time.Millisecond

// NewTailer returns a Tailer whose client has cfg's brokers, fetch sizes,
// isolation and client options; the per-store fields of cfg are Tail's.
func NewTailer(cfg Config) (*Tailer, error) {
	cfg.ensureDefaults()
	cl, err := kgo.NewClient(cfg.clientOpts(
		// An offset deleted under the tail must surface, not be skipped
		// over by a reset: skipping would leave a silent gap.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// A partition added while a fetch waits on the broker is fetched
		// from the next one: the wait bounds how long a new standby
		// waits. Kafka's fetch.max.wait.ms default.
		kgo.FetchMaxWait(tailFetchMaxWait),
	)...)
	if err != nil {
		return nil, fmt.Errorf("tailer: %w", err)
	}
	return &Tailer{readCommitted: cfg.ReadCommitted, cl: cl, subs: map[tailPartition]*tailSub{}, ran: make(chan struct{})}, nil
}

// Close closes the client and, if Run was started, waits for it to
// return. It is idempotent.
func (t *Tailer) Close() {
	t.closeOnce.Do(t.cl.Close)
	if t.started.Load() {
		<-t.ran
	}
}

// Run fetches the registered partitions and applies their batches until
// ctx ends or the Tailer is closed; it returns nil then. Call it once.
func (t *Tailer) Run(ctx context.Context) error {
	t.started.Store(true)
	defer close(t.ran)
	var touched []*tailSub
	for {
		fetches := t.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, part int32, err error) {
			if s := t.sub(topic, part); s != nil {
				s.fail(fmt.Errorf("tail %s: fetch %s partition %d: %w", s.cfg.Task, topic, part, err))
			}
		})
		touched = touched[:0]
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			s := t.sub(fp.Topic, fp.Partition)
			if s == nil {
				return // removed since the fetch went out
			}
			if s.apply(fp, t.readCommitted) && !slices.Contains(touched, s) {
				touched = append(touched, s)
			}
		})
		for _, s := range touched {
			s.report()
		}
	}
}

func (t *Tailer) sub(topic string, partition int32) *tailSub {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.subs[tailPartition{topic, partition}]
}

// Tail catches db up with its changelogs, then keeps it a live copy
// through t until ctx ends. applied, when set, is called after the
// catch-up and after every applied fetch, from Run's goroutine once
// tailing.
//
// Tail returns nil when ctx ends, and an error when a fetch fails, such as
// an offset no longer in the changelog (records deleted while tailing: the
// caller calls Tail again, whose Restore then applies cfg.OnTruncated).
// db's write buffer must be empty; no batch is applied to db once Tail has
// returned, and db is flushed.
func (t *Tailer) Tail(ctx context.Context, cfg Config, db *state.DB, logs []Changelog, applied func(TailInfo)) (err error) {
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
	stored, err := db.Offsets()
	if err != nil {
		return fmt.Errorf("tail %s: read offsets: %w", cfg.Task, err)
	}
	s := &tailSub{
		cfg: cfg, db: db, stores: db.Stores(), applied: applied,
		logs: map[tailPartition]Changelog{}, errc: make(chan error, 1), lag: map[string]int64{},
		info: TailInfo{Task: cfg.Task, Next: map[string]int64{}, Records: res.Records},
	}
	consume := map[string]map[int32]kgo.Offset{}
	for _, l := range logs {
		if l.Store < 0 || l.Store >= len(s.stores) {
			return fmt.Errorf("tail %s: changelog %s: unknown store %d", cfg.Task, l.Topic, l.Store)
		}
		next := stored.Changelog[s.stores[l.Store]]
		s.info.Next[s.stores[l.Store]] = next
		s.logs[tailPartition{l.Topic, l.Partition}] = l
		consume[l.Topic] = map[int32]kgo.Offset{l.Partition: kgo.NewOffset().At(next)}
	}
	if applied != nil {
		applied(TailInfo{Task: cfg.Task, Next: maps.Clone(s.info.Next), Records: res.Records}) // caught up as of the restore's listing
	}
	if err := t.add(s, consume); err != nil {
		return err
	}
	defer func() {
		t.remove(s)
		// The batches were written without the WAL: a flush makes them
		// durable, so that a store closed now reopens where it stood.
		if ferr := db.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("tail %s: %w", cfg.Task, ferr)
		}
	}()
	cfg.Logger.Info("standby tailing", "task", cfg.Task, "offsets", s.info.Next)
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.errc:
		return err
	}
}

// add registers s's partitions and starts fetching them.
func (t *Tailer) add(s *tailSub, consume map[string]map[int32]kgo.Offset) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tp := range s.logs {
		if t.subs[tp] != nil {
			return fmt.Errorf("tail %s: %s partition %d is tailed already", s.cfg.Task, tp.topic, tp.partition)
		}
	}
	for tp := range s.logs {
		t.subs[tp] = s
	}
	t.cl.AddConsumePartitions(consume)
	return nil
}

// remove stops fetching s's partitions and waits for a batch being
// applied to it.
func (t *Tailer) remove(s *tailSub) {
	t.mu.Lock()
	parts := map[string][]int32{}
	for tp := range s.logs {
		if t.subs[tp] == s {
			delete(t.subs, tp)
			parts[tp.topic] = append(parts[tp.topic], tp.partition)
		}
	}
	t.cl.RemoveConsumePartitions(parts)
	t.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *tailSub) fail(err error) {
	select {
	case s.errc <- err:
	default: // Tail has its error already
	}
}

// apply writes fp's records to the store, reporting whether it advanced.
func (s *tailSub) apply(fp kgo.FetchTopicPartition, readCommitted bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logs[tailPartition{fp.Topic, fp.Partition}]
	if s.closed || !ok {
		return false
	}
	name := s.stores[l.Store]
	var next int64
	s.changes, next = appendChanges(s.changes[:0], fp.Records, l.Store, s.info.Next[name], math.MaxInt64)
	end := fp.HighWatermark
	if readCommitted {
		end = fp.LastStableOffset
	}
	s.lag[fp.Topic] = max(end-next, 0)
	if next <= s.info.Next[name] {
		return false
	}
	if err := s.db.ApplyChangelog(l.Store, s.changes, next); err != nil {
		s.fail(fmt.Errorf("tail %s: apply %s: %w", s.cfg.Task, fp.Topic, err))
		return false
	}
	s.info.Next[name] = next
	s.info.Records += int64(len(s.changes))
	return true
}

// report tells s's caller where its store stands after a fetch.
func (s *tailSub) report() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.info.Lag = 0
	for _, n := range s.lag {
		s.info.Lag += n
	}
	info := TailInfo{Task: s.info.Task, Next: maps.Clone(s.info.Next), Lag: s.info.Lag, Records: s.info.Records}
	s.cfg.Logger.Debug("standby batch", "task", info.Task, "records", info.Records, "lag", info.Lag)
	if s.applied != nil {
		s.applied(info) // under s.mu: never after Tail has returned
	}
	s.mu.Unlock()
}
