package assign

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// ErrUserData marks subscription or assignment user data that cannot be
// read.
var ErrUserData = errors.New("assign: bad user data")

// SubscriptionVersion is the version byte of the subscription user data.
//
// Version 2, after the version byte:
//
//	uvarint  number of tasks, then for each, sorted by pipeline, partition:
//	  string   pipeline (uvarint length, bytes)
//	  varint   partition
//	  byte     flags: 1 = the task is open in the member (logged; the
//	           assignment goes by the owned partitions of the subscription)
//	  uvarint  number of stores, then for each, sorted by name:
//	    string   store
//	    varint   next changelog offset of the store (last applied + 1)
//	uvarint  number of generations the member acquired owned partitions
//	         in, then for each, from the oldest:
//	  varint   generation
//	  uvarint  number of topics, then for each, sorted:
//	    string   topic
//	    uvarint  number of partitions, then each (varint), sorted
//
// Version 1 is version 2 without the acquisitions: a member of version 1
// acquired every owned partition at once, as far as the leader can tell.
// A leader that cannot read a member's user data (a later version, or
// garbage) balances as if the member held no stores; so while a group
// upgrades from version 1, a leader of version 1 sees no stores on the
// members already upgraded (their owned partitions still keep them where
// they are), until a member of version 2 leads.
const SubscriptionVersion = 2

// Subscription is what a member says in the user data of its
// subscription, beyond the consumer protocol's topics and owned
// partitions.
type Subscription struct {
	// Stores are the task directories the member has, open or closed.
	Stores []StoreState
	// Acquired is, per owned partition, the generation the member was
	// first assigned it in (Member.Acquired).
	Acquired map[TopicPartition]int32
}

// StoreState is what a member reports about one task directory.
type StoreState struct {
	Task Task
	Open bool
	// Changelog maps a store name to its next changelog offset; stores
	// never committed are missing.
	Changelog map[string]int64
}

const flagOpen = 1

// EncodeSubscription writes s as subscription user data,
// deterministically.
func EncodeSubscription(s Subscription) []byte {
	states := slices.Clone(s.Stores)
	slices.SortFunc(states, func(a, b StoreState) int {
		return cmp.Or(cmp.Compare(a.Task.Pipeline, b.Task.Pipeline), cmp.Compare(a.Task.Partition, b.Task.Partition))
	})
	b := []byte{SubscriptionVersion}
	b = binary.AppendUvarint(b, uint64(len(states)))
	appendString := func(b []byte, s string) []byte {
		return append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	for _, s := range states {
		b = appendString(b, s.Task.Pipeline)
		b = binary.AppendVarint(b, int64(s.Task.Partition))
		var flags byte
		if s.Open {
			flags |= flagOpen
		}
		b = append(b, flags)
		stores := make([]string, 0, len(s.Changelog))
		for name := range s.Changelog {
			stores = append(stores, name)
		}
		slices.Sort(stores)
		b = binary.AppendUvarint(b, uint64(len(stores)))
		for _, name := range stores {
			b = appendString(b, name)
			b = binary.AppendVarint(b, s.Changelog[name])
		}
	}
	byGen := map[int32]map[string][]int32{}
	for tp, gen := range s.Acquired {
		if byGen[gen] == nil {
			byGen[gen] = map[string][]int32{}
		}
		byGen[gen][tp.Topic] = append(byGen[gen][tp.Topic], tp.Partition)
	}
	gens := slices.Sorted(maps.Keys(byGen))
	b = binary.AppendUvarint(b, uint64(len(gens)))
	for _, gen := range gens {
		b = binary.AppendVarint(b, int64(gen))
		topics := slices.Sorted(maps.Keys(byGen[gen]))
		b = binary.AppendUvarint(b, uint64(len(topics)))
		for _, t := range topics {
			ps := byGen[gen][t]
			slices.Sort(ps)
			b = appendString(b, t)
			b = binary.AppendUvarint(b, uint64(len(ps)))
			for _, p := range ps {
				b = binary.AppendVarint(b, int64(p))
			}
		}
	}
	return b
}

// DecodeSubscription reads what EncodeSubscription wrote, or version 1.
// Empty user data (a member of another protocol, or one with nothing to
// say) is an empty subscription.
func DecodeSubscription(b []byte) (Subscription, error) {
	var sub Subscription
	if len(b) == 0 {
		return sub, nil
	}
	version := b[0]
	if version != 1 && version != SubscriptionVersion {
		return sub, fmt.Errorf("%w: subscription version %d, want at most %d", ErrUserData, version, SubscriptionVersion)
	}
	b = b[1:]
	bad := func(what string) error { return fmt.Errorf("%w: subscription truncated at %s", ErrUserData, what) }
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	varint := func() (int64, bool) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := uvarint()
		if !ok || n > uint64(len(b)) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	partition := func() (int32, bool) {
		p, ok := varint()
		return int32(p), ok && p >= 0 && p <= math.MaxInt32
	}
	n, ok := uvarint()
	// Every task takes at least 4 bytes: a bound before allocating.
	if !ok || n > uint64(len(b))/4 {
		return sub, bad("task count")
	}
	states := make([]StoreState, 0, n)
	for range n {
		var s StoreState
		if s.Task.Pipeline, ok = str(); !ok {
			return sub, bad("pipeline")
		}
		if s.Task.Partition, ok = partition(); !ok {
			return sub, bad("partition")
		}
		if len(b) == 0 {
			return sub, bad("flags")
		}
		s.Open = b[0]&flagOpen != 0
		b = b[1:]
		ns, ok := uvarint()
		if !ok || ns > uint64(len(b))/2 {
			return sub, bad("store count")
		}
		s.Changelog = make(map[string]int64, ns)
		for range ns {
			name, ok := str()
			if !ok {
				return sub, bad("store")
			}
			off, ok := varint()
			if !ok {
				return sub, bad("offset")
			}
			s.Changelog[name] = off
		}
		states = append(states, s)
	}
	sub.Stores = states
	if version >= 2 {
		// Every generation and topic takes at least 2 bytes, every
		// partition 1: bounds before allocating.
		ng, ok := uvarint()
		if !ok || ng > uint64(len(b))/2 {
			return Subscription{}, bad("generation count")
		}
		for range ng {
			gen, ok := varint()
			if !ok || gen < math.MinInt32 || gen > math.MaxInt32 {
				return Subscription{}, bad("generation")
			}
			nt, ok := uvarint()
			if !ok || nt > uint64(len(b))/2 {
				return Subscription{}, bad("topic count")
			}
			for range nt {
				t, ok := str()
				if !ok {
					return Subscription{}, bad("topic")
				}
				np, ok := uvarint()
				if !ok || np > uint64(len(b)) {
					return Subscription{}, bad("partition count")
				}
				for range np {
					p, ok := partition()
					if !ok {
						return Subscription{}, bad("acquired partition")
					}
					if sub.Acquired == nil {
						sub.Acquired = map[TopicPartition]int32{}
					}
					sub.Acquired[TopicPartition{t, p}] = int32(gen)
				}
			}
		}
	}
	if len(b) != 0 {
		return Subscription{}, fmt.Errorf("%w: %d bytes after the subscription", ErrUserData, len(b))
	}
	return sub, nil
}

// StandbysVersion is the version byte of the assignment user data, which
// lists the member's standby tasks.
//
// Version 2, after the version byte:
//
//	uvarint  number of tasks, then for each, in unit order:
//	  string   pipeline (uvarint length, bytes)
//	  varint   partition
//	  byte     kind: 0 a standby, 1 a warm-up (a copy filling up on the
//	           member the task is to move to)
//
// Version 1 is version 2 without the kind byte: every task a standby.
// Empty user data means no standbys.
const StandbysVersion = 2

// EncodeStandbys writes a member's standby tasks as assignment user data.
func EncodeStandbys(ks []Standby) []byte {
	b := []byte{StandbysVersion}
	b = binary.AppendUvarint(b, uint64(len(ks)))
	for _, k := range ks {
		b = binary.AppendUvarint(b, uint64(len(k.Pipeline)))
		b = append(b, k.Pipeline...)
		b = binary.AppendVarint(b, int64(k.Partition))
		kind := byte(0)
		if k.Warmup {
			kind = 1
		}
		b = append(b, kind)
	}
	return b
}

// DecodeStandbys reads what EncodeStandbys wrote, or version 1.
func DecodeStandbys(b []byte) ([]Standby, error) {
	if len(b) == 0 {
		return nil, nil
	}
	version := b[0]
	if version != 1 && version != StandbysVersion {
		return nil, fmt.Errorf("%w: standby version %d, want at most %d", ErrUserData, version, StandbysVersion)
	}
	b = b[1:]
	bad := func(what string) error { return fmt.Errorf("%w: standbys truncated at %s", ErrUserData, what) }
	n, w := binary.Uvarint(b)
	// Every task takes at least 2 bytes: a bound before allocating.
	if w <= 0 || n > uint64(len(b[w:]))/2 {
		return nil, bad("task count")
	}
	b = b[w:]
	ks := make([]Standby, 0, n)
	for range n {
		l, w := binary.Uvarint(b)
		if w <= 0 || l > uint64(len(b[w:])) {
			return nil, bad("pipeline")
		}
		pipeline := string(b[w : w+int(l)])
		b = b[w+int(l):]
		p, w := binary.Varint(b)
		if w <= 0 || p < 0 || p > math.MaxInt32 {
			return nil, bad("partition")
		}
		b = b[w:]
		k := Standby{Task: Task{pipeline, int32(p)}}
		if version >= 2 {
			if len(b) == 0 || b[0] > 1 {
				return nil, bad("kind")
			}
			k.Warmup = b[0] == 1
			b = b[1:]
		}
		ks = append(ks, k)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last standby", ErrUserData, len(b))
	}
	return ks, nil
}
