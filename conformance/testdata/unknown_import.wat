;; unknown_import imports a function of another module, a flowstate function
;; the ABI does not have, and its memory.
(module
  (import "env" "now" (func (result i64)))
  (import "flowstate" "kv_scan" (func (param i32) (result i32)))
  (import "env" "mem" (memory 1))
  (export "memory" (memory 0))
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
