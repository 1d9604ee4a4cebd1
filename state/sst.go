package state

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/linxGnu/grocksdb"
)

// ingestDir is the directory, inside the DB's, where IngestChangelog builds
// its SST files. RocksDB ignores subdirectories of its own; the files are on
// the same file system, so ingestion moves them with a hard link instead of
// copying them. Open removes what a crash left behind.
const ingestDir = "ingest.tmp"

// Empty reports whether store holds no key in RocksDB. Buffered writes are
// not looked at.
func (db *DB) Empty(store int) (bool, error) {
	if err := db.check(store); err != nil {
		return false, err
	}
	it := db.rdb.NewIteratorCF(db.ro, db.cfs[store])
	defer it.Close()
	it.SeekToFirst()
	if err := it.Err(); err != nil {
		return false, fmt.Errorf("empty %s: %w", db.names[store], err)
	}
	return !it.Valid(), nil
}

// IngestChangelog writes changelog records of store to one SST file and
// ingests it, then stores the changelog offset next (the offset after the
// last of them). It is the bulk path of a store rebuilt from nothing: the
// records skip the memtables, the flushes and the compactions that
// ApplyChangelog's writes go through.
//
// changes are in changelog order, a later change of a key replacing an
// earlier one; IngestChangelog reorders them (sorted by key) but does not
// keep them. Their Store fields are ignored. The write buffer must be empty.
// A file ingested on top of earlier ones shadows them, as a later write
// does: a key's tombstone is written as a deletion, except when the store
// is empty, since then there is nothing for it to hide.
//
// The data is durable when the ingestion returns (RocksDB syncs the file
// and its MANIFEST entry). The offset is written after it without the WAL,
// like ApplyChangelog's, and is durable after Flush. A crash in between
// leaves the store ahead of its offset, never behind it: the next restore
// replays the records from the older offset over data that already holds
// them, which ends in the same store, because a changelog record carries a
// key's whole latest value, or its deletion: each key the replay touches
// ends with its last record's value, or absent after a tombstone, and the
// keys it does not touch were right as of the older offset. The older
// offset may be none at all; the store is then not empty, so the restore
// replays the whole changelog with ApplyChangelog. Tombstones need the
// changelog to keep them until then (delete.retention.ms), as they do for
// any store behind its changelog: a key put in an ingested chunk and
// deleted in one that was not would otherwise stay.
func (db *DB) IngestChangelog(store int, changes []Change, next int64) error {
	if err := db.check(store); err != nil {
		return err
	}
	name := db.names[store]
	if db.buf.count > 0 {
		return fmt.Errorf("ingest changelog %s: %w", name, ErrBufferNotEmpty)
	}
	start := time.Now()
	empty, err := db.Empty(store)
	if err != nil {
		return fmt.Errorf("ingest changelog %s: %w", name, err)
	}
	// The sorter's buffers, as large as the chunk, are shared by the DBs
	// of the process: the stores of a new instance restore one after
	// another (a few at a time), and each allocating and zeroing its own
	// cost a tenth of the restore's time.
	srt := sorters.Get().(*sorter)
	n, err := db.ingest(store, srt.latest(changes), !empty)
	srt.release()
	sorters.Put(srt)
	if err != nil {
		return fmt.Errorf("ingest changelog %s: %w", name, err)
	}
	wb := db.wb
	defer wb.Clear()
	wb.PutCF(db.meta, changelogKey(name), encodeOffset(next))
	// Through the WAL, one small write per chunk: an ingested file is
	// durable once ingested, and so its offset must be, or a crash during
	// a restore from nothing replays every chunk already in.
	if err := db.rdb.Write(db.wo, wb); err != nil {
		return fmt.Errorf("ingest changelog %s: write offset: %w", name, err)
	}
	db.log.Debug("changelog ingested", "store", name, "records", len(changes), "keys", n, "next", next, "took", time.Since(start))
	return nil
}

// ingest writes sorted to an SST file and ingests it into store, returning
// the number of entries written. Tombstones are written as deletions when
// keepDeletes is set and dropped otherwise. An SST file cannot be empty:
// when nothing is left to write, nothing is ingested.
func (db *DB) ingest(store int, sorted []Change, keepDeletes bool) (int, error) {
	dir := filepath.Join(db.dir, ingestDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	path := filepath.Join(dir, "changelog.sst")
	eo := grocksdb.NewDefaultEnvOptions()
	defer eo.Destroy()
	// The store's own options: its compression and table format (the
	// shared cache's filter and index settings) apply to ingested files.
	w := grocksdb.NewSSTFileWriter(eo, db.storeOpts[store])
	defer w.Destroy()
	if err := w.Open(path); err != nil {
		return 0, fmt.Errorf("open sst: %w", err)
	}
	n, err := writeSST(w, sorted, keepDeletes)
	if err == nil && n > 0 {
		err = w.Finish()
	}
	if err != nil || n == 0 {
		// Finish is what closes the file; an unfinished one is just removed.
		return 0, errors.Join(err, removeIfExists(path))
	}
	iopts := grocksdb.NewDefaultIngestExternalFileOptions()
	defer iopts.Destroy()
	// Link the file into the DB rather than copy it. The default global
	// sequence number places it above every file it overlaps, so it
	// shadows the chunks ingested before it.
	iopts.SetMoveFiles(true)
	if err := db.rdb.IngestExternalFileCF(db.cfs[store], []string{path}, iopts); err != nil {
		return 0, errors.Join(fmt.Errorf("ingest sst: %w", err), removeIfExists(path))
	}
	return n, nil
}

func writeSST(w *grocksdb.SSTFileWriter, sorted []Change, keepDeletes bool) (int, error) {
	n := 0
	for _, c := range sorted {
		var err error
		switch {
		case !c.Delete:
			err = w.Put(c.Key, c.Value)
		case keepDeletes:
			err = w.Delete(c.Key)
		default:
			continue
		}
		if err != nil {
			return n, fmt.Errorf("write sst: %w", err)
		}
		n++
	}
	return n, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// sorter turns a chunk of changelog records into the sorted, deduplicated
// entries of an SST file. Its slices are scratch space, reused by the next
// chunk.
//
// The records' bytes lie in changelog order (in the fetched records'
// memory); the file needs them in key order. An SST writer reading them in
// key order stalled on a cache miss for nearly every key and value, which
// took longer than building the file. So the sorter moves the bytes
// instead: it sorts small keyIndex entries, computes where each surviving
// record goes in one buffer, then copies the records there while reading
// them in changelog order. Those writes land at random too, but a CPU does
// not wait for stores as it waits for loads. The writer then reads the
// buffer front to back. The buffer costs as much memory as the chunk.
type sorter struct {
	idx, tmp []keyIndex
	offs     []int32 // by change: offset of its bytes in data, -1 if dropped
	data     []byte
	out      []Change
}

// sorters holds idle sorters for IngestChangelog; see there.
var sorters = sync.Pool{New: func() any { return new(sorter) }}

// release drops the references to the last chunk's records, keeping the
// buffers.
func (s *sorter) release() {
	clear(s.out)
	s.out = s.out[:0]
}

// keyIndex is one change, as the sort sees it: the first 8 bytes of its key
// as a big-endian number (zero-padded), its position in the chunk, and the
// lengths of its key and value (-1 for a tombstone).
type keyIndex struct {
	prefix     uint64
	i          int32
	klen, vlen int32
}

func keyPrefix(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	var b [8]byte
	copy(b[:], k)
	return binary.BigEndian.Uint64(b[:])
}

// latest returns the last change of each key in changes, in ascending key
// order (as an SST file needs them, strictly). Their keys and values are
// copies in the sorter's buffer, valid until the next call.
//
// The keyIndex entries are sorted by prefix with an LSD radix sort, which
// is stable and so keeps the changes of one key in changelog order; each
// run of equal prefixes is then sorted by whole key. Keys that differ in
// their first 8 bytes, such as hashed or random IDs, need no comparison at
// all; keys sharing longer prefixes make longer runs, sorted by
// comparison.
func (s *sorter) latest(changes []Change) []Change {
	n := len(changes)
	s.out = slices.Grow(s.out[:0], n)
	if n == 0 {
		return s.out
	}
	s.idx, s.tmp = slices.Grow(s.idx[:0], n)[:n], slices.Grow(s.tmp[:0], n)[:n]
	idx, tmp := s.idx, s.tmp
	var counts [8][256]int
	for i, c := range changes {
		p := keyPrefix(c.Key)
		vlen := int32(len(c.Value))
		if c.Delete {
			vlen = -1
		}
		idx[i] = keyIndex{p, int32(i), int32(len(c.Key)), vlen}
		for d := range 8 {
			counts[d][byte(p>>(8*d))]++
		}
	}
	for d := range 8 {
		cnt := &counts[d]
		if cnt[byte(idx[0].prefix>>(8*d))] == n {
			continue // every prefix has the same byte here
		}
		sum := 0
		for b := range cnt {
			cnt[b], sum = sum, sum+cnt[b]
		}
		for _, k := range idx {
			b := byte(k.prefix >> (8 * d))
			tmp[cnt[b]] = k
			cnt[b]++
		}
		idx, tmp = tmp, idx
	}

	// Place the last change of each key; the others get no offset.
	s.offs = slices.Grow(s.offs[:0], n)[:n]
	size := 0
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && idx[hi].prefix == idx[lo].prefix {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(idx[lo:hi], func(a, b keyIndex) int {
				if c := bytes.Compare(changes[a.i].Key, changes[b.i].Key); c != 0 {
					return c
				}
				return cmp.Compare(a.i, b.i)
			})
		}
		for j := lo; j < hi; j++ {
			k := idx[j]
			if j+1 < hi && bytes.Equal(changes[k.i].Key, changes[idx[j+1].i].Key) {
				s.offs[k.i] = -1 // a later change of the same key follows
				idx[j].i = -1
				continue
			}
			s.offs[k.i] = int32(size)
			size += int(k.klen) + int(max(k.vlen, 0))
		}
		lo = hi
	}
	s.data = slices.Grow(s.data[:0], size)[:size]
	for i, c := range changes {
		if o := s.offs[i]; o >= 0 {
			copy(s.data[o:], c.Key)
			copy(s.data[int(o)+len(c.Key):], c.Value)
		}
	}
	for _, k := range idx {
		if k.i < 0 {
			continue
		}
		o := int(s.offs[k.i])
		c := Change{Key: s.data[o : o+int(k.klen) : o+int(k.klen)]}
		if k.vlen < 0 {
			c.Delete = true
		} else {
			c.Value = s.data[o+int(k.klen) : o+int(k.klen)+int(k.vlen) : o+int(k.klen)+int(k.vlen)]
		}
		s.out = append(s.out, c)
	}
	return s.out
}
