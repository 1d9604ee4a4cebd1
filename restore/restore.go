package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/internal/crashpoint"
	"github.com/flowstate/flowstate/internal/field"
	"github.com/flowstate/flowstate/state"
	"github.com/flowstate/flowstate/state/changelog"
)

// Changelog names the changelog partition of one store.
type Changelog struct {
	Store     int    // the store's ID in the task's state.DB
	Topic     string // the compacted changelog topic
	Partition int32
}

// Settings are the restore settings of a process: the keys under restore
// in flowstate's config file, by their koanf tags. Zero fields take the
// defaults of EnsureDefaults. Config embeds them.
type Settings struct {
	// FetchMaxBytes bounds one fetch response of a restore client, in
	// bytes; each restoring task has its own client, apart from the
	// processing consumer. Default 64 MiB. Kafka Streams: the restore
	// consumer's fetch.max.bytes (restore.consumer.fetch.max.bytes).
	FetchMaxBytes int `koanf:"fetch_max_bytes"`
	// FetchMaxPartitionBytes bounds one changelog partition's share of a
	// fetch response, in bytes. Default 4 MiB, or FetchMaxBytes if that
	// is smaller. A fetch that brought a whole partition at once left
	// nothing to do while it was in flight; smaller ones let the client
	// fetch the next piece while the restore writes the last. Measured
	// with `flowstate bench restore` (1M records of 116 bytes, 8
	// partitions of 14.5 MB, embedded broker, 2 cores): 64 MiB fetches
	// 0.72 to 0.81 s, 4 MiB 0.56 to 0.65 s, 1 MiB about the same as 4
	// MiB; a remote broker, with a round trip per fetch, favours the
	// larger. Kafka Streams: the restore consumer's
	// max.partition.fetch.bytes (default 1 MiB).
	FetchMaxPartitionBytes int `koanf:"fetch_max_partition_bytes"`
	// SSTChunkBytes bounds the keys and values, in bytes, that a store
	// rebuilt from nothing collects before they are sorted, written to one
	// SST file and ingested (see PathSST). Default 64 MiB; -1 (any
	// negative, for Restore) turns the SST path off, so that every store
	// takes PathBatch. Kafka Streams: none (it writes every restored
	// record through the memtables).
	SSTChunkBytes int `koanf:"sst_chunk_bytes"`
	// MaxParallel is how many tasks of the process replay changelogs at
	// once. A task waiting for a turn stays RESTORING; running tasks are
	// not held up. A task with nothing to replay needs no turn. Restore
	// does not read it: the caller applies it through Config.Acquire (the
	// engine's active tasks' restores go before standbys' catch-ups, which
	// hold at most MaxParallel-1 turns). Default 2. Kafka Streams: none
	// (each stream thread restores all its tasks).
	MaxParallel int `koanf:"max_parallel"`
	// OnTruncated is what a restore does when records after a store's
	// offset were deleted from its changelog (DeleteRecords, retention):
	// rebuild (default) clears the store and restores it from the log
	// start, fail fails the task with a *TruncatedError. Kafka Streams:
	// none (a TaskCorruptedException wipes the store).
	OnTruncated TruncatedPolicy `koanf:"on_truncated"`
	// ProgressInterval is the period of the "restore progress" log lines
	// while records are replayed. Default DefaultProgressInterval (5s);
	// negative turns them off (the CLI does when it draws progress bars
	// instead). Kafka Streams: none (a StateRestoreListener).
	ProgressInterval time.Duration `koanf:"progress_interval"`
}

// EnsureDefaults fills zero fields with their defaults.
func (s *Settings) EnsureDefaults() {
	if s.FetchMaxBytes == 0 {
		s.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if s.FetchMaxPartitionBytes == 0 {
		s.FetchMaxPartitionBytes = min(DefaultFetchMaxPartitionBytes, s.FetchMaxBytes)
	}
	if s.SSTChunkBytes == 0 {
		s.SSTChunkBytes = DefaultSSTChunkBytes
	}
	if s.MaxParallel == 0 {
		s.MaxParallel = 2
	}
	if s.OnTruncated == "" {
		s.OnTruncated = TruncatedRebuild
	}
	if s.ProgressInterval == 0 {
		s.ProgressInterval = DefaultProgressInterval
	}
}

// Validate reports every invalid field: a field.List keyed by the fields'
// config keys (fetch_max_bytes), which the holder's Validate nests under
// its own key (restore). Call it after EnsureDefaults.
func (s *Settings) Validate() error {
	var errs field.List
	if s.FetchMaxBytes < 1<<10 || s.FetchMaxBytes > math.MaxInt32 {
		errs.Add("fetch_max_bytes", "%d is not between 1 KiB (1024) and 2 GiB", s.FetchMaxBytes)
	}
	if s.FetchMaxPartitionBytes < 1<<10 || s.FetchMaxPartitionBytes > math.MaxInt32 {
		errs.Add("fetch_max_partition_bytes", "%d is not between 1 KiB (1024) and 2 GiB", s.FetchMaxPartitionBytes)
	}
	if s.SSTChunkBytes < -1 || (s.SSTChunkBytes >= 0 && s.SSTChunkBytes < 1<<10) {
		errs.Add("sst_chunk_bytes", "%d is not -1 (off) or at least 1 KiB (1024)", s.SSTChunkBytes)
	}
	if s.MaxParallel < 1 {
		errs.Add("max_parallel", "%d is not at least 1", s.MaxParallel)
	}
	errs.Nest("on_truncated", s.OnTruncated.Validate())
	return errs.Err()
}

// Config configures a restore: the process's Settings, and what the
// caller sets for each restore.
type Config struct {
	Settings
	// Brokers are the seed brokers of the restore client.
	Brokers []string
	// ClientOpts are extra options for the restore client (TLS, SASL).
	ClientOpts []kgo.Opt
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
	// Acquire, when set, is called once the changelogs' offsets are listed
	// and only if there is something to replay, before the Begin event. It
	// may block (the engine bounds how many tasks replay at once with it);
	// an error ends the restore. Release is called when the restore ends.
	Acquire func(ctx context.Context) (release func(), err error)
	// CrashPoints, test-only, kills the process at named points of the
	// restore (internal/crashpoint); nil in production.
	CrashPoints *crashpoint.Set `koanf:"-"`
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
	Bytes     int64 // their keys' and values' bytes
	Restored  int64 // records so far, all changelogs
	Remaining int64 // offsets left, all changelogs
	Rate      float64
}

// EndInfo describes a finished restore.
type EndInfo struct {
	Task     string
	Restored int64
	Took     time.Duration
	// Paths is how each changelog topic with records to replay was written
	// to its store.
	Paths map[string]Path
	Err   error
}

// Result is what a restore did.
type Result struct {
	// Records is the number of changelog records replayed into the stores.
	Records int64
	// Took is the restore's wall time.
	Took time.Duration
	// Paths is how each changelog topic with records to replay was written
	// to its store; changelogs with nothing to replay are absent.
	Paths map[string]Path
}

// Path is how a restore writes a changelog's records to its store.
type Path string

const (
	// PathBatch writes each fetched batch of records with
	// state.DB.ApplyChangelog: through the memtables, without the WAL, the
	// changelog offset in the same WriteBatch. Taken by a store that holds
	// data or a changelog offset, whose new records must land on top of
	// what it has.
	PathBatch Path = "batch"
	// PathSST collects up to Config.SSTChunkBytes of records, sorts them,
	// writes them to an SST file and ingests it with
	// state.DB.IngestChangelog, then writes the changelog offset. Taken by
	// a store rebuilt from nothing (no offset and no data: a new instance,
	// a cleared store), where memtables, flushes and compactions would be
	// pure overhead.
	PathSST Path = "sst"
)

// The defaults of Settings' sizes, in bytes.
const (
	DefaultFetchMaxBytes          = 64 << 20
	DefaultFetchMaxPartitionBytes = 4 << 20
	DefaultSSTChunkBytes          = 64 << 20
)

// ensureDefaults fills zero fields with their defaults.
func (cfg *Config) ensureDefaults() {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Settings.EnsureDefaults()
}

// clientOpts are the options of a restore or tail client, before what it
// consumes: its own fetch sizes, transaction markers kept (they are
// offsets to step over), read_committed when asked.
func (cfg *Config) clientOpts(more ...kgo.Opt) []kgo.Opt {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.FetchMaxBytes(int32(min(cfg.FetchMaxBytes, math.MaxInt32))),
		kgo.FetchMaxPartitionBytes(int32(min(cfg.FetchMaxPartitionBytes, math.MaxInt32))),
		kgo.KeepControlRecords(),
	}, more...)
	opts = append(opts, cfg.ClientOpts...)
	if cfg.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	return opts
}

// appendChanges appends to dst the changes of store in records at offsets
// in [next, end), and returns them with the offset after the last record
// read. Transaction markers are offsets, not records: they advance the
// offset and add no change.
func appendChanges(dst []state.Change, records []*kgo.Record, store int, next, end int64) ([]state.Change, int64) {
	for _, r := range records {
		if r.Offset < next {
			continue
		}
		if r.Offset >= end {
			break
		}
		next = r.Offset + 1
		if c, ok := changelog.Change(store, r); ok {
			dst = append(dst, c)
		}
	}
	return dst, next
}

// Restore replays each changelog from the offset recorded in db to the
// changelog's current end. db's write buffer must be empty.
func Restore(ctx context.Context, cfg Config, db *state.DB, logs []Changelog) (Result, error) {
	begin := time.Now()
	cfg.ensureDefaults()
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

	cl, err := kgo.NewClient(cfg.clientOpts()...)
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
			next = 0 // the store is cleared
		}
		fromNothing := next == 0
		if next < b.start {
			next = b.start
		}
		if next >= b.end {
			continue
		}
		path, err := choosePath(cfg, db, l.Store, fromNothing)
		if err != nil {
			return Result{}, fmt.Errorf("restore %s: changelog %s: %w", cfg.Task, l.Topic, err)
		}
		plans[l.Topic] = &plan{log: l, path: path, next: next, applied: next, end: b.end}
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
	res.Paths = make(map[string]Path, len(plans))
	for topic, p := range plans {
		res.Paths[topic] = p.path
	}
	if err != nil {
		err = fmt.Errorf("restore %s: %w", cfg.Task, err)
	}
	if cfg.Listener.End != nil {
		cfg.Listener.End(EndInfo{Task: cfg.Task, Restored: res.Records, Took: res.Took, Paths: res.Paths, Err: err})
	}
	if err != nil {
		return res, err
	}
	attrs := []any{"task", cfg.Task, "records", res.Records, "took", res.Took.Round(time.Millisecond)}
	if len(plans) > 0 {
		attrs = append(attrs, "path", pathSummary(res.Paths))
	}
	cfg.Logger.Info("restore done", attrs...)
	// Every task start logs its restore, also when there was nothing to
	// replay: a restart that replays 0 records is the point of the design.
	return res, nil
}

type bound struct{ start, end int64 }

// plan is where one changelog's replay stands and ends.
type plan struct {
	log  Changelog
	path Path
	// next is the offset after the last record fetched, applied the one
	// after the last record written to the store with its offset; they
	// differ while PathSST collects a chunk.
	next, applied, end int64
	// chunk holds PathSST's records fetched but not yet ingested, and
	// chunkBytes the sum of their key and value lengths. The keys and
	// values alias the fetched records' memory, kept alive until the
	// chunk is ingested (the restore client uses no kgo pools).
	chunk      []state.Change
	chunkBytes int
}

// choosePath picks how the changelog of store is written: PathSST when the
// store starts from nothing, which fromNothing (no stored changelog offset)
// and an empty column family both attest, PathBatch otherwise. A store
// with data but no offset is one an SST restore was building when the
// process died (the offset is written after each ingestion); it takes the
// batch path, which replays over what is there.
func choosePath(cfg Config, db *state.DB, store int, fromNothing bool) (Path, error) {
	if cfg.SSTChunkBytes < 0 || !fromNothing {
		return PathBatch, nil
	}
	empty, err := db.Empty(store)
	if err != nil {
		return "", err
	}
	if !empty {
		return PathBatch, nil
	}
	return PathSST, nil
}

// pathSummary is the "path" of the "restore done" line: the path all
// changelogs took, or each topic's.
func pathSummary(paths map[string]Path) string {
	var first Path
	same := true
	for _, p := range paths {
		if first == "" {
			first = p
		}
		same = same && p == first
	}
	if same {
		return string(first)
	}
	topics := slices.Sorted(maps.Keys(paths))
	parts := make([]string, len(topics))
	for i, t := range topics {
		parts[i] = t + "=" + string(paths[t])
	}
	return strings.Join(parts, ",")
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
	// applied records that the records of p up to next are in the store.
	applied := func(p *plan, records int, bytes int64, next int64) {
		remaining -= next - p.applied
		p.applied = next
		res.Records += int64(records)
		if p.applied >= p.end {
			left--
		}
		if cfg.Listener.Batch != nil {
			cfg.Listener.Batch(BatchInfo{
				Task: cfg.Task, Topic: p.log.Topic, Records: records, Bytes: bytes, Restored: res.Records,
				Remaining: remaining, Rate: float64(res.Records) / time.Since(begin).Seconds(),
			})
		}
	}
	// ingest writes p's chunk, which ends before offset next, to its store.
	ingest := func(p *plan, next int64) error {
		n, bytes := len(p.chunk), int64(p.chunkBytes)
		if err := db.IngestChangelog(p.log.Store, p.chunk, next); err != nil {
			return fmt.Errorf("ingest %s: %w", p.log.Topic, err)
		}
		clear(p.chunk) // let the fetched records' memory go
		p.chunk, p.chunkBytes = p.chunk[:0], 0
		applied(p, n, bytes, next)
		cfg.CrashPoints.Hit("restore.sst-chunk") // test-only: a chunk and its offset are in, the next chunk is not
		return nil
	}
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
			if p.path == PathSST {
				aerr = collect(p, fp.Records, cfg.SSTChunkBytes, ingest)
				return
			}
			var next int64
			changes, next = appendChanges(changes[:0], fp.Records, p.log.Store, p.next, p.end)
			if next == p.next {
				return
			}
			if err := db.ApplyChangelog(p.log.Store, changes, next); err != nil {
				aerr = fmt.Errorf("apply %s: %w", fp.Topic, err)
				return
			}
			p.next = next
			var bytes int64
			for _, c := range changes {
				bytes += int64(len(c.Key) + len(c.Value))
			}
			applied(p, len(changes), bytes, next)
		})
		if aerr != nil {
			return res, aerr
		}
	}
	return res, nil
}

// collect adds fetched records to p's chunk, calling ingest whenever the
// chunk reaches chunkBytes and when the changelog's end is reached. A chunk
// thus ends at a record boundary, which its offset names, and may hold
// records of several fetches, or part of one.
func collect(p *plan, records []*kgo.Record, chunkBytes int, ingest func(p *plan, next int64) error) error {
	for _, r := range records {
		if r.Offset >= p.end {
			break
		}
		p.next = r.Offset + 1
		c, ok := changelog.Change(p.log.Store, r)
		if !ok {
			continue
		}
		if p.chunk == nil {
			// Room for a chunk of records the size of this one, or for
			// the rest of the changelog if that is less: growing the
			// slice by doubling copied it and ran the GC's write barriers.
			size := max(len(r.Key)+len(r.Value), 16)
			p.chunk = make([]state.Change, 0, min(int64(chunkBytes/size+1), p.end-p.next+1))
		}
		p.chunk = append(p.chunk, c)
		p.chunkBytes += len(r.Key) + len(r.Value)
		if p.chunkBytes >= chunkBytes {
			if err := ingest(p, p.next); err != nil {
				return err
			}
		}
	}
	if p.next >= p.end && p.applied < p.end {
		// The last chunk; also one holding only transaction markers,
		// whose offset must still be stored.
		return ingest(p, p.next)
	}
	return nil
}
