// Package abi is the Go side of the flowstate guest ABI written down in
// SPEC.md: the version, the names of exports and imports, the error codes and
// the encodings of batches, iterator entries and headers.
//
// It has no dependencies and no state, so both the host and the guest SDK
// (compiled to wasip1) import it.
package abi
