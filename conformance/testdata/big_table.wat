;; big_table declares two tables whose minimums each fit the host's limit of
;; 1,048,576 elements (abi/SPEC.md) but together pass it: 1,100,000
;; elements, about 9 MB of host memory outside the guest's linear memory.
(module
  (table 1000000 funcref)
  (table 100000 externref)
  (memory (export "memory") 1)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "flowstate_process") (param i32 i32) (result i32) (i32.const 0)))
