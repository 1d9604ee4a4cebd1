package state

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// metaCF is the column family holding the offsets. Its keys are
// "changelog/<store>" and "input/<topic>"; each value is the offset as 8
// bytes, big-endian, two's complement.
const metaCF = "__meta"

const (
	changelogPrefix = "changelog/"
	inputPrefix     = "input/"
)

// Offsets are the positions a task has consumed up to, stored in the same
// WriteBatch as the data they produced, so the store never runs ahead of or
// behind them.
type Offsets struct {
	// Changelog maps a store name to the next changelog offset to read: the
	// offset of the last record applied to the store, plus one.
	Changelog map[string]int64
	// Input maps an input topic name to the next offset to process.
	Input map[string]int64
}

func changelogKey(store string) []byte { return []byte(changelogPrefix + store) }

func inputKey(topic string) []byte { return []byte(inputPrefix + topic) }

func encodeOffset(off int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(off)) }

// decodeMeta adds one __meta entry to off.
func decodeMeta(off *Offsets, key, value []byte) error {
	if len(value) != 8 {
		return fmt.Errorf("%w: %s key %q has a %d-byte value, want 8", ErrCorrupt, metaCF, key, len(value))
	}
	v := int64(binary.BigEndian.Uint64(value))
	switch k := string(key); {
	case strings.HasPrefix(k, changelogPrefix):
		off.Changelog[k[len(changelogPrefix):]] = v
	case strings.HasPrefix(k, inputPrefix):
		off.Input[k[len(inputPrefix):]] = v
	default:
		return fmt.Errorf("%w: unknown %s key %q", ErrCorrupt, metaCF, key)
	}
	return nil
}
