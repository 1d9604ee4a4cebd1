package assign

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrUserData marks subscription or assignment user data that cannot be
// read.
var ErrUserData = errors.New("assign: bad user data")

// SubscriptionVersion is the version byte of the subscription user data.
//
// Version 1, after the version byte:
//
//	uvarint  number of tasks, then for each, sorted by pipeline, partition:
//	  string   pipeline (uvarint length, bytes)
//	  varint   partition
//	  byte     flags: 1 = the task is open in the member (logged; the
//	           assignment goes by the owned partitions of the subscription)
//	  uvarint  number of stores, then for each, sorted by name:
//	    string   store
//	    varint   next changelog offset of the store (last applied + 1)
//
// A leader that cannot read a member's user data (a later version, or
// garbage) balances as if the member held no stores.
const SubscriptionVersion = 1

// StoreState is what a member reports about one task directory.
type StoreState struct {
	Task Task
	Open bool
	// Changelog maps a store name to its next changelog offset; stores
	// never committed are missing.
	Changelog map[string]int64
}

const flagOpen = 1

// EncodeSubscription writes a member's store states as subscription user
// data, deterministically.
func EncodeSubscription(states []StoreState) []byte {
	states = slices.Clone(states)
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
	return b
}

// DecodeSubscription reads what EncodeSubscription wrote. Empty user data
// (a member of another protocol, or one with nothing to say) is no states.
func DecodeSubscription(b []byte) ([]StoreState, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != SubscriptionVersion {
		return nil, fmt.Errorf("%w: subscription version %d, want %d", ErrUserData, b[0], SubscriptionVersion)
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
	n, ok := uvarint()
	// Every task takes at least 4 bytes: a bound before allocating.
	if !ok || n > uint64(len(b))/4 {
		return nil, bad("task count")
	}
	states := make([]StoreState, 0, n)
	for range n {
		var s StoreState
		var p int64
		if s.Task.Pipeline, ok = str(); !ok {
			return nil, bad("pipeline")
		}
		if p, ok = varint(); !ok || p < 0 || p > math.MaxInt32 {
			return nil, bad("partition")
		}
		s.Task.Partition = int32(p)
		if len(b) == 0 {
			return nil, bad("flags")
		}
		s.Open = b[0]&flagOpen != 0
		b = b[1:]
		ns, ok := uvarint()
		if !ok || ns > uint64(len(b))/2 {
			return nil, bad("store count")
		}
		s.Changelog = make(map[string]int64, ns)
		for range ns {
			name, ok := str()
			if !ok {
				return nil, bad("store")
			}
			off, ok := varint()
			if !ok {
				return nil, bad("offset")
			}
			s.Changelog[name] = off
		}
		states = append(states, s)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last task", ErrUserData, len(b))
	}
	return states, nil
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
