// The guest exports of abi/SPEC.md. AssemblyScript exports only what the
// entry file exports, so a processor re-exports these with
//
//   export * from "<path to>/sdk/assemblyscript/assembly/exports";

import { ABI_VERSION } from "./abi";
import { allocBatch, processAt } from "./sdk";

// flowstate_abi_version returns the ABI version the SDK was built for.
export function flowstate_abi_version(): i32 {
  return ABI_VERSION;
}

// flowstate_alloc returns the address of the batch buffer, grown to size
// bytes (read as unsigned), valid until the next call; 0 when size cannot
// be a batch.
export function flowstate_alloc(size: u32): usize {
  return allocBatch(size);
}

// flowstate_process processes the batch at [ptr, ptr+len), which must lie
// in the buffer flowstate_alloc returned. It returns 0, or 1 after
// reporting the first error through the fail import.
export function flowstate_process(ptr: usize, len: u32): i32 {
  return processAt(ptr, len);
}
