// Package field reports invalid configuration fields by their full dotted
// config key, so that a loader can name, sort and de-duplicate them without
// parsing error strings.
//
// A Validate method returns a List whose keys are relative to its own
// struct (block_cache_mb); the Validate of the struct that holds it nests
// them under the field's key (rocksdb.block_cache_mb), up to the root. A
// value type that does not know its key (a policy string) returns an *Error
// with an empty Key for its holder to name.
package field
