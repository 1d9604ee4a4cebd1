;; import_env imports a function of a module the host does not provide.
(module
  (import "env" "now" (func (result i64)))
  (memory (export "memory") 1)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
