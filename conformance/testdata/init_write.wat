;; init_write tries to write and emit from _initialize, outside any batch,
;; and stores the results at 0 (store_open), 4 (kv_put), 8 (kv_delete),
;; 12 (emit), 16 (kv_get).
(module
  (import "flowstate" "store_open" (func $store_open (param i32 i32) (result i32)))
  (import "flowstate" "topic_open" (func $topic_open (param i32 i32) (result i32)))
  (import "flowstate" "kv_get" (func $kv_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "flowstate" "kv_put" (func $kv_put (param i32 i32 i32 i32 i32) (result i32)))
  (import "flowstate" "kv_delete" (func $kv_delete (param i32 i32 i32) (result i32)))
  (import "flowstate" "emit" (func $emit (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "s1")
  (data (i32.const 80) "out")
  (data (i32.const 96) "k")
  (func (export "_initialize")
    (i32.store (i32.const 0) (call $store_open (i32.const 64) (i32.const 2)))
    (i32.store (i32.const 4) (call $kv_put (i32.const 0) (i32.const 96) (i32.const 1) (i32.const 96) (i32.const 1)))
    (i32.store (i32.const 8) (call $kv_delete (i32.const 0) (i32.const 96) (i32.const 1)))
    (i32.store (i32.const 12) (call $emit (call $topic_open (i32.const 80) (i32.const 3))
      (i32.const 96) (i32.const 1) (i32.const 96) (i32.const 1) (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 16) (call $kv_get (i32.const 0) (i32.const 96) (i32.const 1) (i32.const 128) (i32.const 8))))
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
