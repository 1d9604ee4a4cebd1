package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowstate/flowstate/state"
)

// StoresConfig configures Stores.
type StoresConfig struct {
	Stores        int // task databases to open under one budget
	Keys          int // keys written to each database
	ValueBytes    int // bytes per value
	CacheMB       int // the shared block cache, MiB (rocksdb.block_cache_mb)
	WriteBufferMB int // all memtables together, MiB (rocksdb.write_buffer_mb)
	// Dir is the directory for the databases; empty is a temporary one,
	// removed after.
	Dir string
}

// StoresResult is what `flowstate bench stores` measured.
type StoresResult struct {
	Stores        int     `json:"stores"`
	KeysPerStore  int     `json:"keys_per_store"`
	DataMB        float64 `json:"data_mb"`         // keys and values written, all stores
	BudgetMB      int     `json:"budget_mb"`       // block cache; memtables are charged to it
	WriteBufferMB int     `json:"write_buffer_mb"` // the memtables' cap, inside the budget
	CacheMB       float64 `json:"cache_mb"`        // the shared cache's usage at the end
	MemtableMB    float64 `json:"memtable_mb"`     // memtables at the end
	RSSBeforeMB   float64 `json:"rss_before_mb"`   // the process before opening any store
	RSSPeakMB     float64 `json:"rss_peak_mb"`     // the highest RSS seen while writing and reading
	RSSMB         float64 `json:"rss_mb"`          // at the end, every store open
	GoHeapMB      float64 `json:"go_heap_mb"`      // of RSSMB, the Go heap in use
	Seconds       float64 `json:"seconds"`
}

// Stores opens cfg.Stores task databases under one memory budget, writes
// cfg.Keys keys to each through the write buffer (as tasks do), reads a
// random sample back, and measures the process's RSS next to the budget:
// with one shared cache and write buffer manager, 100 stores cost the
// budget plus a fixed overhead per database, not 100 caches.
func Stores(ctx context.Context, cfg StoresConfig) (StoresResult, error) {
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "flowstate-bench-stores-")
		if err != nil {
			return StoresResult{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	return benchStores(ctx, cfg, dir)
}

// WriteStores prints the result of `flowstate bench stores`: a table, or
// one JSON object.
func WriteStores(w io.Writer, r StoresResult, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"bench": "stores", "result": r})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stores\tkeys/store\tdata MB\tbudget MB\tcache used MB\tmemtables MB\tRSS before MB\tRSS peak MB\tRSS end MB\tGo heap MB\tseconds\t")
	fmt.Fprintf(tw, "%d\t%d\t%.0f\t%d\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t\n", r.Stores, r.KeysPerStore, r.DataMB, r.BudgetMB,
		r.CacheMB, r.MemtableMB, r.RSSBeforeMB, r.RSSPeakMB, r.RSSMB, r.GoHeapMB, r.Seconds)
	return tw.Flush()
}

func benchStores(ctx context.Context, cfg StoresConfig, dir string) (StoresResult, error) {
	start := time.Now()
	res := StoresResult{Stores: cfg.Stores, KeysPerStore: cfg.Keys, BudgetMB: cfg.CacheMB, WriteBufferMB: cfg.WriteBufferMB}
	var err error
	if res.RSSBeforeMB, err = rssMB(); err != nil {
		return res, err
	}
	budget, err := state.NewBudget(state.BudgetConfig{BlockCacheMB: cfg.CacheMB, WriteBufferMB: cfg.WriteBufferMB})
	if err != nil {
		return res, err
	}
	defer budget.Close()
	dbs := make([]*state.DB, 0, cfg.Stores)
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	log := slog.New(slog.DiscardHandler)
	for i := range cfg.Stores {
		db, err := state.Open(state.Config{Dir: filepath.Join(dir, "task-"+strconv.Itoa(i)), Stores: []string{"s"}, Budget: budget, Logger: log})
		if err != nil {
			return res, err
		}
		dbs = append(dbs, db)
	}
	peak := func() {
		if mb, err := rssMB(); err == nil && mb > res.RSSPeakMB {
			res.RSSPeakMB = mb
		}
	}
	value := make([]byte, cfg.ValueBytes)
	key := make([]byte, 0, 16)
	const commitEvery = 1000
	// Round-robin over the stores, a commit's worth at a time, as a process
	// whose tasks all take input does.
	for done := 0; done < cfg.Keys; done += commitEvery {
		n := min(commitEvery, cfg.Keys-done)
		for _, db := range dbs {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			for k := done; k < done+n; k++ {
				key = binary.BigEndian.AppendUint64(key[:0], uint64(k))
				binary.BigEndian.PutUint64(value[:min(8, len(value))], uint64(k))
				if err := db.Put(0, key, value); err != nil {
					return res, err
				}
			}
			if err := db.Commit(state.Offsets{}); err != nil {
				return res, err
			}
		}
		peak()
	}
	res.DataMB = float64(cfg.Stores) * float64(cfg.Keys) * float64(8+cfg.ValueBytes) / (1 << 20)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, db := range dbs {
		for range 1000 {
			key = binary.BigEndian.AppendUint64(key[:0], uint64(rng.IntN(cfg.Keys)))
			if _, ok, err := db.Get(0, key); err != nil || !ok {
				return res, fmt.Errorf("read back %x: found %v, %w", key, ok, err)
			}
		}
	}
	peak()
	u := budget.Usage()
	res.CacheMB = float64(u.CacheBytes) / (1 << 20)
	res.MemtableMB = float64(u.MemtableBytes) / (1 << 20)
	if res.RSSMB, err = rssMB(); err != nil {
		return res, err
	}
	res.RSSPeakMB = max(res.RSSPeakMB, res.RSSMB)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.GoHeapMB = float64(ms.HeapInuse) / (1 << 20)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// rssMB returns the process's resident set size from /proc/self/status.
func rssMB() (float64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				return 0, fmt.Errorf("rss: %q: %w", v, err)
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, errors.New("rss: no VmRSS in /proc/self/status")
}
