// Package restore replays a task's changelog topics into its stores, from the
// offsets recorded inside the stores to the changelogs' ends.
//
// A store written by a clean commit already holds every changelog record up
// to its recorded offset, so a restart replays nothing; a store that is one
// commit behind (the process died between the changelog flush and the RocksDB
// batch) replays that commit; a store rebuilt from nothing replays the whole
// (compacted) changelog. Restore reads with its own Kafka client, never the
// processing consumer, so a restoring task does not hold up running ones.
package restore
