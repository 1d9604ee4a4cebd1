;; probe is the host suite's scripted guest: each record's value is a
;; sequence of calls of 8 little-endian i32 each (op, a0..a6). The low byte
;; of op picks the operation (see $call); bit 8+i of op makes argument ai a
;; reference: the result of call number ai instead of ai itself, so that a
;; case can pass a handle the host returned. Each call's i32 result is kept
;; at 1024 + 4*n, across batches, until op 20 emits them all to topic
;; "probe-results" (key "results", value the results as little-endian i32s)
;; and starts over; the number kept is at 1020, so that a host's own tests
;; can read the results from memory. Memory below 900 and from 8192 to 65535
;; is free for test data (op 19 writes it); the batch goes at 65536.
;; flowstate_process returns 0, or what op 15 set.
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
  (import "flowstate" "fail" (func $fail (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))

  (memory (export "memory") 2)
  (data (i32.const 900) "probe-results")
  (data (i32.const 920) "results")
  (data (i32.const 928) "mem")
  (global $nres (mut i32) (i32.const 0))
  (global $ret (mut i32) (i32.const 0))

  (func (export "flowstate_abi_version") (result i32) (i32.const 1))

  ;; The batch goes at 64 KiB; memory grows to fit it, or alloc returns 0.
  (func (export "flowstate_alloc") (param $size i32) (result i32)
    (local $need i64)
    (local.set $need (i64.shr_u (i64.add (i64.extend_i32_u (local.get $size)) (i64.const 131071)) (i64.const 16)))
    (if (i64.gt_u (local.get $need) (i64.extend_i32_u (memory.size)))
      (then
        (if (i32.eq (memory.grow (i32.sub (i32.wrap_i64 (local.get $need)) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 65536))

  ;; skipn returns the position after the nbytes at $p.
  (func $skipn (param $p i32) (result i32)
    (local $l i32)
    (local.set $l (i32.load (local.get $p)))
    (if (result i32) (i32.eq (local.get $l) (i32.const -1))
      (then (i32.add (local.get $p) (i32.const 4)))
      (else (i32.add (local.get $p) (i32.add (i32.const 4) (local.get $l))))))

  ;; arg returns argument $i of a call: $v, or the result of call $v when
  ;; bit 8+$i of $op is set.
  (func $arg (param $op i32) (param $i i32) (param $v i32) (result i32)
    (if (result i32) (i32.and (i32.shr_u (local.get $op) (i32.add (i32.const 8) (local.get $i))) (i32.const 1))
      (then (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $v) (i32.const 2)))))
      (else (local.get $v))))

  (func (export "flowstate_process") (param $ptr i32) (param $len i32) (result i32)
    (local $p i32) (local $n i32) (local $vlen i32) (local $vend i32) (local $hc i32) (local $op i32) (local $r i32)
    (global.set $ret (i32.const 0))
    (local.set $n (i32.load (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 4)))
    (block $done
      (loop $rec
        (br_if $done (i32.eqz (local.get $n)))
        ;; topic, then partition, offset and timestamp
        (local.set $p (i32.add (local.get $p) (i32.add (i32.const 4) (i32.load (local.get $p)))))
        (local.set $p (i32.add (local.get $p) (i32.const 20)))
        ;; key
        (local.set $p (call $skipn (local.get $p)))
        ;; value: the calls
        (local.set $vlen (i32.load (local.get $p)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (if (i32.ne (local.get $vlen) (i32.const -1))
          (then
            (local.set $vend (i32.add (local.get $p) (local.get $vlen)))
            (block $cdone
              (loop $c
                (br_if $cdone (i32.ge_u (local.get $p) (local.get $vend)))
                (local.set $op (i32.load (local.get $p)))
                (local.set $r
                  (call $call
                    (i32.and (local.get $op) (i32.const 255))
                    (call $arg (local.get $op) (i32.const 0) (i32.load offset=4 (local.get $p)))
                    (call $arg (local.get $op) (i32.const 1) (i32.load offset=8 (local.get $p)))
                    (call $arg (local.get $op) (i32.const 2) (i32.load offset=12 (local.get $p)))
                    (call $arg (local.get $op) (i32.const 3) (i32.load offset=16 (local.get $p)))
                    (call $arg (local.get $op) (i32.const 4) (i32.load offset=20 (local.get $p)))
                    (call $arg (local.get $op) (i32.const 5) (i32.load offset=24 (local.get $p)))
                    (call $arg (local.get $op) (i32.const 6) (i32.load offset=28 (local.get $p)))))
                ;; poke (19) and report (20) keep no result.
                (if (i32.lt_u (i32.sub (i32.and (local.get $op) (i32.const 255)) (i32.const 19)) (i32.const 2))
                  (then)
                  (else
                    (i32.store (i32.add (i32.const 1024) (i32.shl (global.get $nres) (i32.const 2))) (local.get $r))
                    (global.set $nres (i32.add (global.get $nres) (i32.const 1)))))
                (i32.store (i32.const 1020) (global.get $nres))
                (local.set $p (i32.add (local.get $p) (i32.const 32)))
                (br $c)))))
        ;; headers
        (local.set $hc (i32.load (local.get $p)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (block $hdone
          (loop $h
            (br_if $hdone (i32.eqz (local.get $hc)))
            (local.set $p (i32.add (local.get $p) (i32.add (i32.const 4) (i32.load (local.get $p)))))
            (local.set $p (call $skipn (local.get $p)))
            (local.set $hc (i32.sub (local.get $hc) (i32.const 1)))
            (br $h)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $rec)))
    (global.get $ret))

  ;; results is the handle of topic probe-results, or an error code.
  (func $results (result i32)
    (call $topic_open (i32.const 900) (i32.const 13)))

  (func $call (param $op i32) (param $a0 i32) (param $a1 i32) (param $a2 i32) (param $a3 i32) (param $a4 i32) (param $a5 i32) (param $a6 i32) (result i32)
    (block $default
    (block $o26
    (block $o25
    (block $o24
    (block $o23
    (block $o22
    (block $o21
    (block $o20
    (block $o19
    (block $o18
    (block $o17
    (block $o16
    (block $o15
    (block $o14
    (block $o13
    (block $o12
    (block $o11
    (block $o10
    (block $o9
    (block $o8
    (block $o7
    (block $o6
    (block $o5
    (block $o4
    (block $o3
    (block $o2
    (block $o1
    (block $o0
      (br_table $o0 $o1 $o2 $o3 $o4 $o5 $o6 $o7 $o8 $o9 $o10 $o11 $o12 $o13 $o14 $o15 $o16 $o17 $o18 $o19
        $o20 $o21 $o22 $o23 $o24 $o25 $o26 $default (local.get $op)))
    ;; op 0: store_open(name_ptr, name_len)
    (return (call $store_open (local.get $a0) (local.get $a1))))
    ;; op 1: topic_open(name_ptr, name_len)
    (return (call $topic_open (local.get $a0) (local.get $a1))))
    ;; op 2: kv_get(store, key_ptr, key_len, buf_ptr, buf_cap)
    (return (call $kv_get (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3) (local.get $a4))))
    ;; op 3: kv_put(store, key_ptr, key_len, val_ptr, val_len)
    (return (call $kv_put (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3) (local.get $a4))))
    ;; op 4: kv_delete(store, key_ptr, key_len)
    (return (call $kv_delete (local.get $a0) (local.get $a1) (local.get $a2))))
    ;; op 5: kv_range(store, start_ptr, start_len, end_ptr, end_len)
    (return (call $kv_range (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3) (local.get $a4))))
    ;; op 6: iter_next(iter, buf_ptr, buf_cap)
    (return (call $iter_next (local.get $a0) (local.get $a1) (local.get $a2))))
    ;; op 7: iter_close(iter)
    (return (call $iter_close (local.get $a0))))
    ;; op 8: emit(topic, key_ptr, key_len, val_ptr, val_len, hdr_ptr, hdr_len)
    (return (call $emit (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3) (local.get $a4) (local.get $a5) (local.get $a6))))
    ;; op 9: log(level, msg_ptr, msg_len)
    (return (call $log (local.get $a0) (local.get $a1) (local.get $a2))))
    ;; op 10: fail(msg_ptr, msg_len)
    (return (call $fail (local.get $a0) (local.get $a1))))
    ;; op 11: trap
    (unreachable))
    ;; op 12: loop forever
    (loop $l (br $l)) (unreachable))
    ;; op 13: memory.grow(pages)
    (return (memory.grow (local.get $a0))))
    ;; op 14: proc_exit(code)
    (call $proc_exit (local.get $a0)) (unreachable))
    ;; op 15: make flowstate_process return a0
    (global.set $ret (local.get $a0)) (return (i32.const 0)))
    ;; op 16: fd_write(fd, iovs, iovs_len, nwritten_ptr)
    (return (call $fd_write (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3))))
    ;; op 17: random_get(buf, len)
    (return (call $random_get (local.get $a0) (local.get $a1))))
    ;; op 18: clock_time_get(clock, result_ptr), precision 0
    (return (call $clock_time_get (local.get $a0) (i64.const 0) (local.get $a1))))
    ;; op 19: poke: store a1 as an i32 at a0
    (i32.store (local.get $a0) (local.get $a1)) (return (i32.const 0)))
    ;; op 20: report: emit the results so far, and start over
    (drop (call $emit (call $results) (i32.const 920) (i32.const 7) (i32.const 1024) (i32.shl (global.get $nres) (i32.const 2))
      (i32.const 0) (i32.const 0)))
    (global.set $nres (i32.const 0))
    (return (i32.const 0)))
    ;; op 21: dump: emit the memory at [a0, a0+a1) with key "mem"
    (return (call $emit (call $results) (i32.const 928) (i32.const 3) (local.get $a0) (local.get $a1) (i32.const 0) (i32.const 0))))
    ;; op 22: environ_sizes_get(count_ptr, size_ptr)
    (return (call $environ_sizes_get (local.get $a0) (local.get $a1))))
    ;; op 23: args_sizes_get(count_ptr, size_ptr)
    (return (call $args_sizes_get (local.get $a0) (local.get $a1))))
    ;; op 24: path_open(fd, path_ptr, path_len, result_fd_ptr), read-only, no flags
    (return (call $path_open (local.get $a0) (i32.const 0) (local.get $a1) (local.get $a2) (i32.const 0)
      (i64.const 2) (i64.const 0) (i32.const 0) (local.get $a3))))
    ;; op 25: fd_prestat_get(fd, result_ptr)
    (return (call $fd_prestat_get (local.get $a0) (local.get $a1))))
    ;; op 26: sock_accept(fd, flags, result_fd_ptr)
    (return (call $sock_accept (local.get $a0) (local.get $a1) (local.get $a2))))
    (unreachable))
)
