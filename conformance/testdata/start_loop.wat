;; start_loop's start function never returns.
(module
  (memory (export "memory") 1)
  (func $start (loop $l (br $l)))
  (start $start)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
