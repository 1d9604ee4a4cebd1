package engine

// CrashAfterCommit makes e die, like a killed process, between the Kafka
// commit of its n-th transaction with changelog records and the RocksDB
// batches of that commit.
func CrashAfterCommit(e *Engine, n int) {
	e.crashAfterCommit = func(changes int) bool {
		if changes > 0 {
			n--
		}
		return n == 0
	}
}

// ErrCrashed is what Run returns after CrashAfterCommit fired.
var ErrCrashed = errCrashed

// CrashWhen makes e die, like a killed process, between the Kafka commit of
// a transaction and its RocksDB batches, the first time crash (asked with
// the transaction's changelog record count) says so.
func CrashWhen(e *Engine, crash func(changes int) bool) { e.crashAfterCommit = crash }
