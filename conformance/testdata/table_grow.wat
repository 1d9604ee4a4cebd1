;; table_grow grows its table a little, then by 50 million elements (400 MB
;; of host memory outside the guest's linear memory). flowstate_process
;; returns 0 when the first grow worked and the second failed, 1 when the
;; first failed, 2 when the second worked.
(module
  (table $t 10 funcref)
  (memory (export "memory") 1)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32)
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1))
      (then (return (i32.const 1))))
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 50000000)) (i32.const -1))
      (then (return (i32.const 2))))
    (i32.const 0)))
