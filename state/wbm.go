package state

// #cgo CXXFLAGS: -std=c++17
// #cgo LDFLAGS: -lrocksdb -lstdc++
// #include <stddef.h>
// typedef struct flowstate_wbm flowstate_wbm;
// flowstate_wbm* flowstate_wbm_create(size_t buffer_size, void* cache);
// void flowstate_wbm_destroy(flowstate_wbm* w);
// void flowstate_wbm_set(void* options, flowstate_wbm* w);
// size_t flowstate_wbm_memory_usage(flowstate_wbm* w);
import "C"

import (
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"github.com/linxGnu/grocksdb"
)

// writeBufferManager is one rocksdb::WriteBufferManager, charged to a block
// cache, that caps the memtable memory of every database whose options it is
// set on. grocksdb v1.7.15 has no binding for it, so wbm.cc reaches the C++
// objects behind grocksdb's C handles: the first field of grocksdb.Options
// and grocksdb.Cache is a *rocksdb_options_t or *rocksdb_cache_t, which
// RocksDB's c.cc defines as a struct holding the C++ object in its field rep.
// cHandle checks that layout, so a grocksdb upgrade that changes it fails
// NewBudget instead of corrupting memory.
type writeBufferManager struct {
	c *C.flowstate_wbm
}

// newWriteBufferManager returns a manager capping memtables at size bytes and
// charging them to cache. The manager keeps its own reference to the cache.
func newWriteBufferManager(size uint64, cache *grocksdb.Cache) (*writeBufferManager, error) {
	cc, err := cHandle(cache)
	if err != nil {
		return nil, err
	}
	return &writeBufferManager{c: C.flowstate_wbm_create(C.size_t(size), cc)}, nil
}

// setOn makes opts, and every database later opened with them, use w.
// The options hold their own reference, so w may be destroyed afterwards.
func (w *writeBufferManager) setOn(opts *grocksdb.Options) error {
	co, err := cHandle(opts)
	if err != nil {
		return err
	}
	C.flowstate_wbm_set(co, w.c)
	return nil
}

// memoryUsage returns the memtable bytes currently charged to w.
func (w *writeBufferManager) memoryUsage() uint64 {
	return uint64(C.flowstate_wbm_memory_usage(w.c))
}

// destroy drops this reference to the manager; databases still using it keep
// it alive until they close.
func (w *writeBufferManager) destroy() {
	C.flowstate_wbm_destroy(w.c)
	w.c = nil
}

// cHandle returns the C handle that is the first field of a grocksdb struct,
// after checking that the field is a pointer to the C struct wbm.cc expects.
func cHandle[T grocksdb.Options | grocksdb.Cache](p *T) (unsafe.Pointer, error) {
	t := reflect.TypeFor[T]()
	want := "rocksdb_options_t"
	if t.Name() == "Cache" {
		want = "rocksdb_cache_t"
	}
	if t.NumField() == 0 || t.Field(0).Type.Kind() != reflect.Pointer ||
		!strings.HasSuffix(t.Field(0).Type.Elem().Name(), want) {
		return nil, fmt.Errorf("state: grocksdb.%s does not start with a *%s; the write buffer manager needs grocksdb v1.7.15", t.Name(), want)
	}
	h := *(*unsafe.Pointer)(unsafe.Pointer(p))
	if h == nil {
		return nil, fmt.Errorf("state: grocksdb.%s is destroyed", t.Name())
	}
	return h, nil
}
