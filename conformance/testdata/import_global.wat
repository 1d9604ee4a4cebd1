;; import_global imports a global and a table; the host provides functions
;; only.
(module
  (import "env" "g" (global i32))
  (import "env" "t" (table 1 funcref))
  (memory (export "memory") 1)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
