package state

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/linxGnu/grocksdb"
)

var (
	// ErrClosed is returned by every method of a DB after Close.
	ErrClosed = errors.New("state: closed")
	// ErrUnknownStore is returned for a store ID or name the DB was not
	// opened with.
	ErrUnknownStore = errors.New("state: unknown store")
	// ErrBufferNotEmpty is returned by ApplyChangelog while writes are
	// buffered.
	ErrBufferNotEmpty = errors.New("state: write buffer not empty")
	// ErrInvalidConfig is wrapped by every Validate error.
	ErrInvalidConfig = errors.New("state: invalid config")
	// ErrCorrupt is returned when stored metadata cannot be decoded.
	ErrCorrupt = errors.New("state: corrupt metadata")
)

// Config configures one task's database.
type Config struct {
	// Dir is the directory of the task's RocksDB database; it is created if
	// missing. Required.
	Dir string
	// Stores names the task's stores, one column family each. Their order
	// defines the store IDs 0..len(Stores)-1 used by every other method.
	// Names must be unique, non-empty and not "__meta".
	Stores []string
	// Budget is the memory budget shared with other databases. Nil gives
	// this DB a private budget with the default BudgetConfig, closed with it.
	Budget *Budget
	// Logger receives lifecycle events. Nil discards them.
	Logger *slog.Logger
}

// Validate reports every missing or invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, fmt.Errorf("%w: empty dir", ErrInvalidConfig))
	}
	seen := make(map[string]bool, len(c.Stores))
	for i, s := range c.Stores {
		switch {
		case s == "":
			errs = append(errs, fmt.Errorf("%w: store %d has an empty name", ErrInvalidConfig, i))
		case s == metaCF:
			errs = append(errs, fmt.Errorf("%w: store name %q is reserved", ErrInvalidConfig, s))
		case seen[s]:
			errs = append(errs, fmt.Errorf("%w: duplicate store %q", ErrInvalidConfig, s))
		}
		seen[s] = true
	}
	return errors.Join(errs...)
}

// DB is one task's RocksDB database: a column family per store, the
// __meta column family holding the task's offsets, and the write buffer in
// front of them. Reads see the buffer first, then RocksDB; Commit writes the
// buffer and the offsets in one atomic WriteBatch.
//
// A DB is not safe for concurrent use: it belongs to its task's goroutine,
// which does all reads, writes and commits, so nothing inside is locked.
type DB struct {
	log    *slog.Logger
	dir    string
	budget *Budget
	// ownBudget is set when the DB made its budget and closes it.
	ownBudget bool

	rdb  *grocksdb.DB
	opts *grocksdb.Options
	// storeOpts are each store's column family options: opts, or a tuned
	// copy of it (tuning.go), which release destroys.
	storeOpts []*grocksdb.Options
	ro        *grocksdb.ReadOptions
	wo        *grocksdb.WriteOptions // WAL on, for Commit
	woNoWAL   *grocksdb.WriteOptions // for ApplyChangelog
	fo        *grocksdb.FlushOptions
	wb        *grocksdb.WriteBatch // reused by Commit and ApplyChangelog

	names   []string                       // store ID -> name
	ids     map[string]int                 // name -> store ID
	cfs     []*grocksdb.ColumnFamilyHandle // store ID -> column family
	meta    *grocksdb.ColumnFamilyHandle
	handles []*grocksdb.ColumnFamilyHandle // every column family, __meta last

	buf    buffer
	iters  map[*Iterator]struct{} // open iterators, released by Close
	closed bool
}

// Open opens or creates the database in cfg.Dir. Column families missing
// for cfg.Stores are created; column families of stores no longer
// configured are opened, kept and ignored.
func Open(cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Dir, err)
	}
	start := time.Now()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{
		log:    log,
		dir:    cfg.Dir,
		budget: cfg.Budget,
		names:  slices.Clone(cfg.Stores),
		ids:    make(map[string]int, len(cfg.Stores)),
		iters:  make(map[*Iterator]struct{}),
		buf:    newBuffer(len(cfg.Stores)),
	}
	for i, s := range cfg.Stores {
		db.ids[s] = i
	}
	if err := db.open(); err != nil {
		db.release()
		return nil, fmt.Errorf("open %s: %w", cfg.Dir, err)
	}
	log.Info("state open", "dir", cfg.Dir, "stores", len(cfg.Stores), "took", time.Since(start))
	return db, nil
}

func (db *DB) open() error {
	if db.budget == nil {
		b, err := NewBudget(BudgetConfig{})
		if err != nil {
			return err
		}
		db.budget, db.ownBudget = b, true
	}
	if err := os.MkdirAll(db.dir, 0o755); err != nil {
		return err
	}
	// An SST file IngestChangelog was building when the process died.
	if err := os.RemoveAll(filepath.Join(db.dir, ingestDir)); err != nil {
		return err
	}
	db.opts = grocksdb.NewDefaultOptions()
	db.opts.SetCreateIfMissing(true)
	db.opts.SetCreateIfMissingColumnFamilies(true)
	// ApplyChangelog skips the WAL, so a flush of the data column families
	// alone could persist data whose offset is lost, or the reverse.
	db.opts.SetAtomicFlush(true)
	// Each memtable with data holds at least one arena block, charged to the
	// shared write buffer manager. With RocksDB's default block (1 MiB here)
	// ten two-store tasks held about 25 MiB under a 4 MiB budget, with 256
	// KiB about 8 MiB (TestBudgetFlushes): the floor matters when a process
	// runs many tasks.
	db.opts.SetArenaBlockSize(256 << 10)
	if err := db.budget.apply(db.opts); err != nil {
		return err
	}

	// RocksDB must open every existing column family. __meta goes last, so
	// that Flush flushes it after the data.
	cfNames := []string{"default"}
	cfNames = append(cfNames, db.names...)
	_, err := os.Stat(filepath.Join(db.dir, "CURRENT"))
	switch {
	case err == nil:
		existing, err := grocksdb.ListColumnFamilies(db.opts, db.dir)
		if err != nil {
			return fmt.Errorf("list column families: %w", err)
		}
		cfNames = append(cfNames, existing...)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	cfNames = slices.DeleteFunc(unique(cfNames), func(s string) bool { return s == metaCF })
	cfNames = append(cfNames, metaCF)
	cfOpts := make([]*grocksdb.Options, len(cfNames))
	db.storeOpts = make([]*grocksdb.Options, len(db.names))
	for i, name := range cfNames {
		cfOpts[i] = db.opts
		if id, ok := db.ids[name]; ok {
			cfOpts[i] = db.budget.storeOptions(db.opts, name) // tuning.go
			db.storeOpts[id] = cfOpts[i]
		}
	}
	rdb, handles, err := grocksdb.OpenDbColumnFamilies(db.opts, db.dir, cfNames, cfOpts)
	if err != nil {
		return err
	}
	db.rdb, db.handles = rdb, handles
	db.meta = handles[len(handles)-1]
	db.cfs = make([]*grocksdb.ColumnFamilyHandle, len(db.names))
	for i, name := range cfNames {
		if id, ok := db.ids[name]; ok {
			db.cfs[id] = handles[i]
		}
	}
	db.budget.track(db)

	db.ro = grocksdb.NewDefaultReadOptions()
	db.wo = grocksdb.NewDefaultWriteOptions()
	db.woNoWAL = grocksdb.NewDefaultWriteOptions()
	db.woNoWAL.DisableWAL(true)
	db.fo = grocksdb.NewDefaultFlushOptions()
	db.fo.SetWait(true)
	db.wb = grocksdb.NewWriteBatch()
	return nil
}

// unique drops repeated strings, keeping the first of each.
func unique(s []string) []string {
	seen := make(map[string]bool, len(s))
	return slices.DeleteFunc(s, func(v string) bool {
		dup := seen[v]
		seen[v] = true
		return dup
	})
}

// Close releases open iterators, closes the database and, if the DB made
// its own budget, the budget. Buffered writes are dropped. Close is
// idempotent; afterwards every method returns ErrClosed.
func (db *DB) Close() error {
	if db.closed {
		return nil
	}
	db.closed = true
	for it := range db.iters {
		it.release(ErrClosed)
	}
	db.release()
	db.buf = buffer{}
	db.log.Info("state closed", "dir", db.dir)
	return nil
}

// release frees whatever part of the RocksDB state open got to.
func (db *DB) release() {
	if db.rdb != nil {
		db.budget.untrack(db)
	}
	for _, h := range db.handles {
		h.Destroy()
	}
	db.handles, db.cfs, db.meta = nil, nil, nil
	if db.rdb != nil {
		db.rdb.Close()
		db.rdb = nil
	}
	for _, o := range db.storeOpts {
		if o != nil && o != db.opts {
			o.Destroy()
		}
	}
	db.storeOpts = nil
	if db.opts != nil {
		db.opts.Destroy()
	}
	if db.ro != nil {
		db.ro.Destroy()
	}
	if db.wo != nil {
		db.wo.Destroy()
		db.woNoWAL.Destroy()
	}
	if db.fo != nil {
		db.fo.Destroy()
	}
	if db.wb != nil {
		db.wb.Destroy()
	}
	db.opts, db.ro, db.wo, db.woNoWAL, db.fo, db.wb = nil, nil, nil, nil, nil, nil
	if db.ownBudget && db.budget != nil {
		db.budget.Close()
	}
}

// Stores returns the store names in store ID order.
func (db *DB) Stores() []string { return slices.Clone(db.names) }

// StoreID returns the ID of the named store.
func (db *DB) StoreID(name string) (int, bool) {
	id, ok := db.ids[name]
	return id, ok
}

func (db *DB) check(store int) error {
	if db.closed {
		return ErrClosed
	}
	if store < 0 || store >= len(db.names) {
		return fmt.Errorf("%w: id %d", ErrUnknownStore, store)
	}
	return nil
}

// Offsets returns the offsets stored by the last Commit and ApplyChangelog
// calls. Its maps are empty, not nil, when none are stored.
func (db *DB) Offsets() (Offsets, error) {
	off := Offsets{Changelog: map[string]int64{}, Input: map[string]int64{}}
	if db.closed {
		return off, ErrClosed
	}
	it := db.rdb.NewIteratorCF(db.ro, db.meta)
	defer it.Close()
	for it.SeekToFirst(); it.Valid(); it.Next() {
		if err := decodeMeta(&off, it.Key().Data(), it.Value().Data()); err != nil {
			return off, fmt.Errorf("offsets: %w", err)
		}
	}
	if err := it.Err(); err != nil {
		return off, fmt.Errorf("offsets: %w", err)
	}
	return off, nil
}

// Get returns the value of key in store: the buffered one if the key was
// written since the last Commit, otherwise RocksDB's. A buffered Delete
// gives ok false.
//
// The value must not be modified. It is valid until the next write to the
// DB (Put, Delete, RollbackTo, Commit, Discard, Close): a buffered value may
// be overwritten in place.
func (db *DB) Get(store int, key []byte) (value []byte, ok bool, err error) {
	if err := db.check(store); err != nil {
		return nil, false, err
	}
	if e := db.buf.get(store, key); e != nil {
		return e.value, !e.del, nil
	}
	h, err := db.rdb.GetPinnedCF(db.ro, db.cfs[store], key)
	if err != nil {
		return nil, false, fmt.Errorf("get %s: %w", db.names[store], err)
	}
	defer h.Destroy()
	if !h.Exists() {
		return nil, false, nil
	}
	v := h.Data()
	return append(make([]byte, 0, len(v)), v...), true, nil
}

// Put buffers value for key in store. Key and value are copied.
func (db *DB) Put(store int, key, value []byte) error {
	if err := db.check(store); err != nil {
		return err
	}
	db.buf.write(store, key, value, false)
	return nil
}

// Delete buffers a tombstone for key in store: it hides a stored value
// until Commit deletes it.
func (db *DB) Delete(store int, key []byte) error {
	if err := db.check(store); err != nil {
		return err
	}
	db.buf.write(store, key, nil, true)
	return nil
}

// Savepoint marks the current state of the write buffer, so that the writes
// of one guest batch can be undone without losing the rest:
//
//	sp := db.Savepoint()
//	if err := runBatch(); err != nil {
//		db.RollbackTo(sp)
//	}
//	db.Release(sp)
//
// Savepoints nest. After Close it returns the zero Savepoint.
func (db *DB) Savepoint() Savepoint {
	if db.closed {
		return Savepoint{}
	}
	return db.buf.savepoint()
}

// RollbackTo undoes every Put and Delete since sp was taken, in time
// proportional to their number. sp stays valid; savepoints taken after it
// do not. It panics if sp is not valid (see Savepoint), since that is a bug
// in the caller, and does nothing after Close.
func (db *DB) RollbackTo(sp Savepoint) {
	if db.closed {
		return
	}
	if !db.buf.valid(sp) {
		panic("state: RollbackTo with a savepoint that is no longer valid")
	}
	db.buf.rollbackTo(sp)
}

// Release forgets sp and every savepoint taken after it, keeping their
// writes. While any savepoint is held the buffer keeps an undo record for
// the first write to each key after each savepoint, so a caller taking one
// savepoint per guest batch releases it when the batch is done; otherwise
// the undo log grows until Commit. It panics if sp is not valid, and does
// nothing after Close.
func (db *DB) Release(sp Savepoint) {
	if db.closed {
		return
	}
	if !db.buf.valid(sp) {
		panic("state: Release of a savepoint that is no longer valid")
	}
	db.buf.release(sp)
}

// Change is one buffered or changelog write.
type Change struct {
	Store  int
	Key    []byte
	Value  []byte // nil when Delete
	Delete bool
}

// Pending returns the buffered writes, one per key with its latest value,
// sorted by store and key: the records the changelog gets at the next
// Commit. The slices alias the buffer: they must not be modified and are
// valid until the next write to the DB.
func (db *DB) Pending() []Change {
	if db.closed {
		return nil
	}
	out := make([]Change, 0, db.buf.count)
	for s := range db.buf.stores {
		db.buf.stores[s].tree.Ascend(func(e *entry) bool {
			out = append(out, Change{Store: s, Key: e.key, Value: e.value, Delete: e.del})
			return true
		})
	}
	return out
}

// PendingCount returns the number of distinct buffered keys.
func (db *DB) PendingCount() int { return db.buf.count }

// PendingBytes returns the approximate memory held by the buffer: the bytes
// of every key and value copied in since the last Commit or Discard,
// including values since overwritten or rolled back, without per-entry
// overhead. (An overwrite that fits in place, such as a counter update
// within one savepoint interval, adds nothing.) The commit loop compares it
// with its cache size (Kafka Streams' statestore.cache.max.bytes) to commit
// early.
func (db *DB) PendingBytes() int { return db.buf.arena.bytes }

// Commit writes the buffered changes and off to RocksDB in one WriteBatch,
// through the WAL, and empties the buffer. Offsets in off overwrite the
// stored ones of the same store or topic; others are kept. On error the
// buffer is kept. Iterators must be closed first.
//
// The WAL is not synced: after a machine crash the store may be behind its
// last commit, but never inconsistent with its offsets.
func (db *DB) Commit(off Offsets) error {
	if db.closed {
		return ErrClosed
	}
	start := time.Now()
	for name := range off.Changelog {
		if _, ok := db.ids[name]; !ok {
			return fmt.Errorf("commit: changelog offset: %w %q", ErrUnknownStore, name)
		}
	}
	wb := db.wb
	defer wb.Clear()
	for s := range db.buf.stores {
		cf := db.cfs[s]
		db.buf.stores[s].tree.Ascend(func(e *entry) bool {
			if e.del {
				wb.DeleteCF(cf, e.key)
			} else {
				wb.PutCF(cf, e.key, e.value)
			}
			return true
		})
	}
	putOffsets(wb, db.meta, off)
	if err := db.rdb.Write(db.wo, wb); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	db.log.Debug("state commit", "keys", db.buf.count, "bytes", db.buf.arena.bytes, "took", time.Since(start))
	db.buf.reset()
	return nil
}

func putOffsets(wb *grocksdb.WriteBatch, meta *grocksdb.ColumnFamilyHandle, off Offsets) {
	for name, v := range off.Changelog {
		wb.PutCF(meta, changelogKey(name), encodeOffset(v))
	}
	for topic, v := range off.Input {
		wb.PutCF(meta, inputKey(topic), encodeOffset(v))
	}
}

// Discard drops every buffered write and savepoint. Iterators must be
// closed first.
func (db *DB) Discard() {
	if db.closed {
		return
	}
	db.buf.reset()
}

// ApplyChangelog writes changelog records read back from Kafka straight to
// RocksDB, with the changelog offset next (the offset after the last of
// them), in one WriteBatch without the WAL: the changelog is the log. The
// Store field of each change is ignored. The write buffer must be empty.
// Call Flush when the restore is done.
func (db *DB) ApplyChangelog(store int, changes []Change, next int64) error {
	if err := db.check(store); err != nil {
		return err
	}
	name := db.names[store]
	if db.buf.count > 0 {
		return fmt.Errorf("apply changelog %s: %w", name, ErrBufferNotEmpty)
	}
	wb, cf := db.wb, db.cfs[store]
	defer wb.Clear()
	for _, c := range changes {
		if c.Delete {
			wb.DeleteCF(cf, c.Key)
		} else {
			wb.PutCF(cf, c.Key, c.Value)
		}
	}
	wb.PutCF(db.meta, changelogKey(name), encodeOffset(next))
	if err := db.rdb.Write(db.woNoWAL, wb); err != nil {
		return fmt.Errorf("apply changelog %s: %w", name, err)
	}
	return nil
}

// Flush writes the memtables of every column family to SST files and waits.
// Writes made by ApplyChangelog are durable only after it. The data column
// families are flushed before __meta, so that a crash in between leaves
// offsets behind their data (replayed, harmless), never ahead of it.
func (db *DB) Flush() error {
	if db.closed {
		return ErrClosed
	}
	for _, h := range db.handles {
		if err := db.rdb.FlushCF(h, db.fo); err != nil {
			return fmt.Errorf("flush %s: %w", h.Name(), err)
		}
	}
	return nil
}
