;; big_table declares a table of 2 million elements, 16 MiB of host memory
;; outside the guest's linear memory.
(module
  (table 2000000 funcref)
  (memory (export "memory") 1)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
