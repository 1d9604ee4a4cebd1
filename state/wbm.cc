// A RocksDB WriteBufferManager for grocksdb v1.7.15, whose C API has none.
// The two struct definitions repeat RocksDB's db/c.cc, which wraps each C++
// object in a struct with one field named rep; see wbm.go.

#include <memory>

#include <rocksdb/cache.h>
#include <rocksdb/options.h>
#include <rocksdb/write_buffer_manager.h>

struct rocksdb_options_t { rocksdb::Options rep; };
struct rocksdb_cache_t { std::shared_ptr<rocksdb::Cache> rep; };

struct flowstate_wbm { std::shared_ptr<rocksdb::WriteBufferManager> rep; };

extern "C" {

flowstate_wbm* flowstate_wbm_create(size_t buffer_size, void* cache) {
  auto c = static_cast<rocksdb_cache_t*>(cache);
  return new flowstate_wbm{
      std::make_shared<rocksdb::WriteBufferManager>(buffer_size, c->rep)};
}

void flowstate_wbm_destroy(flowstate_wbm* w) { delete w; }

void flowstate_wbm_set(void* options, flowstate_wbm* w) {
  static_cast<rocksdb_options_t*>(options)->rep.write_buffer_manager = w->rep;
}

size_t flowstate_wbm_memory_usage(flowstate_wbm* w) {
  return w->rep->memory_usage();
}

}  // extern "C"
