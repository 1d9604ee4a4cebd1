;; bad_signature's flowstate_alloc takes an i64, and its flowstate_process
;; returns nothing.
(module
  (memory (export "memory") 1)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i64) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32)))
