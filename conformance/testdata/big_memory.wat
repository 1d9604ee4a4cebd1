;; big_memory asks for 32 MiB of memory at start.
(module
  (memory (export "memory") 512)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
