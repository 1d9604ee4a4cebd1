;; missing_export has no flowstate_process.
(module
  (memory (export "memory") 1)
  (func (export "flowstate_abi_version") (result i32) (i32.const 1))
  (func (export "flowstate_alloc") (param i32) (result i32) (i32.const 1024)))
