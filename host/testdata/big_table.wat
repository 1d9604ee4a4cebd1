;; big_table declares tables whose minimums add up past the host's limit.
(module
  (table 1000000 funcref)
  (table 100000 externref)
  (memory (export "memory") 1)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
