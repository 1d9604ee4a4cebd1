// Package changelog writes store mutations to compacted topics and reads them back.
//
// A store's changelog is one compacted topic, <application_id>-<store>-changelog,
// with as many partitions as the inputs of the store's pipeline: the task of
// input partition p writes and restores partition p. A record is one key's
// latest value as of a commit: its key is the store key, its value the
// stored value, and a delete is a tombstone (a nil value), which compaction
// eventually removes. Records carry no headers. Under exactly-once the
// topic also holds transaction markers, which are offsets but no records.
package changelog

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/state"
)

// Topic returns the changelog topic of a store.
func Topic(applicationID, store string) string {
	return applicationID + "-" + store + "-changelog"
}

// TopicConfigs are the topic configs a changelog topic is created with.
func TopicConfigs() map[string]*string {
	compact := "compact"
	return map[string]*string{"cleanup.policy": &compact}
}

// Log is the changelog partition of one task: a topic per store, in the
// store order of the task's state.DB, and the task's partition.
type Log struct {
	Stores    []string // store names, by store index
	Topics    []string // changelog topic, by store index
	Partition int32
}

// Record returns the changelog record of c. Its Partition is set: a
// producer writing changelogs must use a manual partitioner for them
// (kgo.ManualPartitioner).
func (l Log) Record(c state.Change) *kgo.Record {
	r := &kgo.Record{Topic: l.Topics[c.Store], Partition: l.Partition, Key: c.Key}
	if !c.Delete {
		r.Value = c.Value
	}
	return r
}

// Next returns the next changelog offset of each store that recs, the
// records of changes (recs[i] = l.Record(changes[i])) as the producer
// acknowledged them, wrote to. Stores without a change are missing.
func (l Log) Next(changes []state.Change, recs []*kgo.Record) map[string]int64 {
	next := make(map[string]int64, len(l.Stores))
	for i, r := range recs {
		store := l.Stores[changes[i].Store]
		if r.Offset+1 > next[store] {
			next[store] = r.Offset + 1
		}
	}
	return next
}

// Change decodes a changelog record of store back into the change it
// recorded. ok is false for a transaction marker, which records nothing.
func Change(store int, r *kgo.Record) (c state.Change, ok bool) {
	if r.Attrs.IsControl() {
		return state.Change{}, false
	}
	return state.Change{Store: store, Key: r.Key, Value: r.Value, Delete: r.Value == nil}, true
}
