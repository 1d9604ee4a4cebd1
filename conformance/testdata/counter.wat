;; counter is the happy-path and benchmark guest. For each record it counts
;; the record's key in store "counts" (kv_get, then kv_put of the count as an
;; i64) and, if topic "out" is declared, emits the count with a header h=v. A
;; record with a null value deletes its key and emits a tombstone. At the end
;; of a batch, if "out" is declared, it logs "batch done" and emits all of
;; "counts" as one record keyed "range" whose value is iter_next's entries.
(module
  (import "flowstate" "store_open" (func $store_open (param i32 i32) (result i32)))
  (import "flowstate" "topic_open" (func $topic_open (param i32 i32) (result i32)))
  (import "flowstate" "kv_get" (func $kv_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "flowstate" "kv_put" (func $kv_put (param i32 i32 i32 i32 i32) (result i32)))
  (import "flowstate" "kv_delete" (func $kv_delete (param i32 i32 i32) (result i32)))
  (import "flowstate" "kv_range" (func $kv_range (param i32 i32 i32 i32 i32) (result i32)))
  (import "flowstate" "iter_next" (func $iter_next (param i32 i32 i32) (result i32)))
  (import "flowstate" "iter_close" (func $iter_close (param i32) (result i32)))
  (import "flowstate" "emit" (func $emit (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "flowstate" "log" (func $log (param i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 16) "counts")
  (data (i32.const 32) "out")
  (data (i32.const 48) "batch done")
  (data (i32.const 64) "range")
  ;; headers: count 1, key "h", value "v"
  (data (i32.const 80) "\01\00\00\00\01\00\00\00h\01\00\00\00v")
  ;; 256: the count, an i64. 1024..9215: the range buffer.

  (global $store (mut i32) (i32.const -1))
  (global $topic (mut i32) (i32.const -1))

  (func (export "_initialize")
    (global.set $store (call $store_open (i32.const 16) (i32.const 6)))
    (global.set $topic (call $topic_open (i32.const 32) (i32.const 3))))

  (func (export "flowstate_abi_version") (result i32) (i32.const 1))

  (func (export "flowstate_alloc") (param $size i32) (result i32)
    (local $need i64)
    (local.set $need (i64.shr_u (i64.add (i64.extend_i32_u (local.get $size)) (i64.const 131071)) (i64.const 16)))
    (if (i64.gt_u (local.get $need) (i64.extend_i32_u (memory.size)))
      (then
        (if (i32.eq (memory.grow (i32.sub (i32.wrap_i64 (local.get $need)) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 65536))

  (func $skipn (param $p i32) (result i32)
    (local $l i32)
    (local.set $l (i32.load (local.get $p)))
    (if (result i32) (i32.eq (local.get $l) (i32.const -1))
      (then (i32.add (local.get $p) (i32.const 4)))
      (else (i32.add (local.get $p) (i32.add (i32.const 4) (local.get $l))))))

  (func (export "flowstate_process") (param $ptr i32) (param $len i32) (result i32)
    (local $p i32) (local $n i32) (local $klen i32) (local $kptr i32) (local $vlen i32)
    (local $hc i32) (local $r i32) (local $it i32)
    (if (i32.lt_s (global.get $store) (i32.const 0)) (then (return (i32.const 1))))
    (local.set $n (i32.load (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 4)))
    (block $done
      (loop $rec
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $p (i32.add (local.get $p) (i32.add (i32.const 4) (i32.load (local.get $p)))))
        (local.set $p (i32.add (local.get $p) (i32.const 20)))
        (local.set $klen (i32.load (local.get $p)))
        (local.set $kptr (i32.add (local.get $p) (i32.const 4)))
        (local.set $p (call $skipn (local.get $p)))
        (local.set $vlen (i32.load (local.get $p)))
        (local.set $p (call $skipn (local.get $p)))
        (local.set $hc (i32.load (local.get $p)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (block $hdone
          (loop $h
            (br_if $hdone (i32.eqz (local.get $hc)))
            (local.set $p (i32.add (local.get $p) (i32.add (i32.const 4) (i32.load (local.get $p)))))
            (local.set $p (call $skipn (local.get $p)))
            (local.set $hc (i32.sub (local.get $hc) (i32.const 1)))
            (br $h)))
        (if (i32.eq (local.get $vlen) (i32.const -1))
          (then
            (local.set $r (call $kv_delete (global.get $store) (local.get $kptr) (local.get $klen)))
            (if (local.get $r) (then (return (local.get $r))))
            (if (i32.ge_s (global.get $topic) (i32.const 0))
              (then
                (local.set $r (call $emit (global.get $topic) (local.get $kptr) (local.get $klen)
                  (i32.const 0) (i32.const -1) (i32.const 0) (i32.const 0)))
                (if (local.get $r) (then (return (local.get $r)))))))
          (else
            (local.set $r (call $kv_get (global.get $store) (local.get $kptr) (local.get $klen) (i32.const 256) (i32.const 8)))
            (if (i32.eq (local.get $r) (i32.const -1))
              (then (i64.store (i32.const 256) (i64.const 0)))
              (else (if (i32.lt_s (local.get $r) (i32.const 0)) (then (return (local.get $r))))))
            (i64.store (i32.const 256) (i64.add (i64.load (i32.const 256)) (i64.const 1)))
            (local.set $r (call $kv_put (global.get $store) (local.get $kptr) (local.get $klen) (i32.const 256) (i32.const 8)))
            (if (local.get $r) (then (return (local.get $r))))
            (if (i32.ge_s (global.get $topic) (i32.const 0))
              (then
                (local.set $r (call $emit (global.get $topic) (local.get $kptr) (local.get $klen)
                  (i32.const 256) (i32.const 8) (i32.const 80) (i32.const 14)))
                (if (local.get $r) (then (return (local.get $r))))))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $rec)))
    (if (i32.ge_s (global.get $topic) (i32.const 0))
      (then
        (drop (call $log (i32.const 0) (i32.const 48) (i32.const 10)))
        (local.set $it (call $kv_range (global.get $store) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
        (if (i32.lt_s (local.get $it) (i32.const 0)) (then (return (local.get $it))))
        (local.set $r (call $iter_next (local.get $it) (i32.const 1024) (i32.const 8192)))
        (if (i32.lt_s (local.get $r) (i32.const 0)) (then (return (local.get $r))))
        (local.set $r (call $emit (global.get $topic) (i32.const 64) (i32.const 5) (i32.const 1024) (local.get $r) (i32.const 0) (i32.const 0)))
        (if (local.get $r) (then (return (local.get $r))))
        (drop (call $iter_close (local.get $it)))))
    (i32.const 0))
)
