// Package state keeps a task's stores in one RocksDB database, buffers their uncommitted writes and commits them atomically with the task's offsets.
package state
