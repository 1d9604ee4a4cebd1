package abi

// Version is the ABI version this package describes. A guest returns it from
// its flowstate_abi_version export.
const Version = 1

// Names of the guest's exports.
const (
	ExportVersion    = "flowstate_abi_version"
	ExportAlloc      = "flowstate_alloc"
	ExportProcess    = "flowstate_process"
	ExportMemory     = "memory"
	ExportInitialize = "_initialize"
)

// ImportModule is the module name of every host function.
const ImportModule = "flowstate"

// Names of the host functions, in ImportModule.
const (
	ImportStoreOpen = "store_open"
	ImportTopicOpen = "topic_open"
	ImportKVGet     = "kv_get"
	ImportKVPut     = "kv_put"
	ImportKVDelete  = "kv_delete"
	ImportKVRange   = "kv_range"
	ImportIterNext  = "iter_next"
	ImportIterClose = "iter_close"
	ImportEmit      = "emit"
	ImportLog       = "log"
	ImportFail      = "fail"
)

// Null is the length that encodes a null key or value, as a u32 in an
// encoding or as the i32 -1 in a host function's length argument.
const Null = 0xFFFFFFFF

// Log levels accepted by the log import; the values of Go's slog.Level.
const (
	LevelDebug = -4
	LevelInfo  = 0
	LevelWarn  = 4
	LevelError = 8
)
