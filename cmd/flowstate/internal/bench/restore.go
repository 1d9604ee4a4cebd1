package bench

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/restore"
	"github.com/flowstate/flowstate/state"
)

// benchKeyBytes is the length of every key of `flowstate bench restore`:
// 8 random-looking bytes, hex-encoded.
const benchKeyBytes = 16

// RestoreConfig configures Restore.
type RestoreConfig struct {
	Keys       int    // distinct keys in the changelog, one record each
	ValueBytes int    // bytes of each value
	Partitions int    // changelog partitions, one store each
	Parallel   int    // stores restored at once (restore.max_parallel)
	Brokers    string // host:port of the broker
	// Restart, after the full restore, closes the stores, appends Delta
	// keys and restores again.
	Restart bool
	Delta   int
	// FetchMaxBytes, FetchPartitionBytes and SSTChunkBytes are the
	// restore's settings; 0 is their default, SSTChunkBytes -1 no SST path.
	FetchMaxBytes       int
	FetchPartitionBytes int
	SSTChunkBytes       int
	CPUProfile          string       // a CPU profile of the restores goes to this file, when set
	Logger              *slog.Logger // nil discards the logs
}

// RestoreResult is one row of `flowstate bench restore`.
type RestoreResult struct {
	// Restore is "full" (fresh stores, the whole changelog) or "delta" (the
	// stores of the full restore, reopened, and the records since).
	Restore       string  `json:"restore"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"` // keys and values of the records
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_second"`
	MBPerSec      float64 `json:"mb_per_second"` // Bytes, in units of 10^6
	// Path is the restore path every store took ("sst", "batch"), or
	// "mixed".
	Path string `json:"path"`
}

// Restore measures how fast stores are restored from their changelog: it
// fills a compacted changelog with one record per key, then restores every
// partition into a fresh store, as a new instance does, and with Restart
// the same stores again after a few more records, as a restarted one does.
// The clock covers restore.Restore alone: its client, offset listing,
// replay and flush, not opening the stores.
func Restore(ctx context.Context, cfg RestoreConfig) ([]RestoreResult, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &restoreBench{cfg: cfg, brokers: cfg.Brokers, log: cfg.Logger,
		topic: "bench-restore-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-changelog"}
	return b.run(ctx)
}

// WriteRestore prints the results of `flowstate bench restore` run with
// cfg: a table, or one JSON object.
func WriteRestore(w io.Writer, cfg RestoreConfig, results []RestoreResult, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"bench": "restore", "keys": cfg.Keys, "value_bytes": cfg.ValueBytes,
			"partitions": cfg.Partitions, "parallel": cfg.Parallel, "results": results,
		})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "restore\trecords\tbytes\tseconds\trecords/s\tMB/s\tpath\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%.0f\t%.1f\t%s\t\n", r.Restore, r.Records, r.Bytes, r.Seconds, r.RecordsPerSec, r.MBPerSec, r.Path)
	}
	return tw.Flush()
}

// restoreBench is one run of `flowstate bench restore`.
type restoreBench struct {
	cfg     RestoreConfig
	brokers string
	topic   string
	log     *slog.Logger
	dir     string // one store directory per partition below it
}

func (b *restoreBench) run(ctx context.Context) ([]RestoreResult, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.brokers),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// Kafka's (and kfake's) default max.message.bytes bounds a batch;
		// batches that large keep the per-batch cost of produce and fetch
		// low, as a busy changelog's would.
		kgo.ProducerBatchMaxBytes(1_000_000),
		kgo.ProducerLinger(10*time.Millisecond),
		kgo.MaxBufferedBytes(256<<20),
		kgo.MaxBufferedRecords(1<<30), // bounded by bytes
		// Random values do not compress: a codec would cost the producer
		// and the restore time and save nothing.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	compact := "compact"
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(b.cfg.Partitions), -1, map[string]*string{"cleanup.policy": &compact}, b.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return nil, fmt.Errorf("create changelog %s: %w", b.topic, err)
	}
	b.dir, err = os.MkdirTemp("", "flowstate-bench-restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.dir)

	if err := b.produce(ctx, cl, 0, b.cfg.Keys); err != nil {
		return nil, err
	}
	if b.cfg.CPUProfile != "" {
		pf, err := os.Create(b.cfg.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return nil, fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	full, err := b.restore(ctx, "full", b.cfg.Keys)
	if err != nil {
		return nil, err
	}
	results := []RestoreResult{full}
	if !b.cfg.Restart {
		return results, nil
	}
	// New values for keys of every partition: a restarted instance's
	// stores are that far behind their changelogs.
	if err := b.produce(ctx, cl, 1, b.cfg.Delta); err != nil {
		return nil, err
	}
	delta, err := b.restore(ctx, "delta", b.cfg.Delta)
	if err != nil {
		return nil, err
	}
	if delta.Path != string(restore.PathBatch) {
		return nil, fmt.Errorf("delta restore took path %s, want batch", delta.Path)
	}
	return append(results, delta), nil
}

// benchKey returns the key of key number i: a bijective mix of i, so that
// keys are distinct and arrive in no particular order, as a store's do.
func benchKey(i int) []byte {
	x := uint64(i) * 0x9e3779b97f4a7c15
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], x)
	return hex.AppendEncode(make([]byte, 0, benchKeyBytes), raw[:])
}

// produce writes a record with a random value for each of the keys 0 to
// n-1. Key number i goes to partition i mod partitions; one goroutine per
// partition feeds the client, so partitions fill concurrently.
func (b *restoreBench) produce(ctx context.Context, cl *kgo.Client, seed uint64, n int) error {
	start := time.Now()
	parts := b.cfg.Partitions
	var mu sync.Mutex
	var perr error
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if perr == nil {
				perr = err
			}
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(p)))
			var slab []byte // values are cut from it; each record keeps its piece
			for i := p; i < n; i += parts {
				if len(slab) < b.cfg.ValueBytes {
					slab = make([]byte, max(b.cfg.ValueBytes*4096, 1))
					fillRandom(rng, slab)
				}
				v := slab[:b.cfg.ValueBytes:b.cfg.ValueBytes]
				slab = slab[b.cfg.ValueBytes:]
				cl.Produce(ctx, &kgo.Record{Topic: b.topic, Partition: int32(p), Key: benchKey(i), Value: v}, done)
			}
		})
	}
	wg.Wait()
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("produce changelog: %w", err)
	}
	if perr != nil {
		return fmt.Errorf("produce changelog: %w", perr)
	}
	b.log.Debug("changelog produced", "records", n, "took", time.Since(start))
	return nil
}

func fillRandom(rng *rand.Rand, p []byte) {
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, rng.Uint64())
		p = p[8:]
	}
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
}

// restore opens a store per partition (anew for "full", again for
// "delta"), restores them all, at most Parallel at a time, and closes
// them cleanly. want is the number of records the restore must replay.
func (b *restoreBench) restore(ctx context.Context, name string, want int) (RestoreResult, error) {
	budget, err := state.NewBudget(state.BudgetConfig{})
	if err != nil {
		return RestoreResult{}, err
	}
	defer budget.Close()
	dbs := make([]*state.DB, b.cfg.Partitions)
	defer func() {
		for _, db := range dbs {
			if db != nil {
				db.Close()
			}
		}
	}()
	for p := range dbs {
		dbs[p], err = state.Open(state.Config{
			Dir: filepath.Join(b.dir, strconv.Itoa(p)), Stores: []string{"store"}, Budget: budget, Logger: b.log,
		})
		if err != nil {
			return RestoreResult{}, err
		}
	}
	// The engine's restore turns: a task replays once it holds one.
	turns := make(chan struct{}, b.cfg.Parallel)
	acquire := func(ctx context.Context) (func(), error) {
		select {
		case turns <- struct{}{}:
			return func() { <-turns }, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	results := make([]restore.Result, b.cfg.Partitions)
	errs := make([]error, b.cfg.Partitions)
	var wg sync.WaitGroup
	start := time.Now()
	for p := range dbs {
		wg.Go(func() {
			results[p], errs[p] = restore.Restore(ctx, restore.Config{
				Settings: restore.Settings{
					FetchMaxBytes:          b.cfg.FetchMaxBytes,
					FetchMaxPartitionBytes: b.cfg.FetchPartitionBytes,
					SSTChunkBytes:          b.cfg.SSTChunkBytes,
					ProgressInterval:       -1,
				},
				Brokers: []string{b.brokers},
				Task:    "bench/" + strconv.Itoa(p),
				Logger:  b.log,
				Acquire: acquire,
			}, dbs[p], []restore.Changelog{{Store: 0, Topic: b.topic, Partition: int32(p)}})
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return RestoreResult{}, fmt.Errorf("%s restore: %w", name, err)
	}
	r := RestoreResult{Restore: name, Seconds: took.Seconds()}
	for _, res := range results {
		r.Records += res.Records
		switch p := string(res.Paths[b.topic]); {
		case p == "":
		case r.Path == "":
			r.Path = p
		case r.Path != p:
			r.Path = "mixed"
		}
	}
	if r.Records != int64(want) {
		return RestoreResult{}, fmt.Errorf("%s restore replayed %d records, want %d", name, r.Records, want)
	}
	r.Bytes = r.Records * int64(benchKeyBytes+b.cfg.ValueBytes)
	r.RecordsPerSec = float64(r.Records) / took.Seconds()
	r.MBPerSec = float64(r.Bytes) / 1e6 / took.Seconds()
	return r, nil
}
