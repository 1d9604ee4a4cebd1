;; version2 is built for ABI version 2, which the host does not support.
(module
  (memory (export "memory") 1)
  (func (export "flowstate_abi_version") (result i32) (i32.const 2))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
