package assign

import (
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"testing"
)

func TestUserData(t *testing.T) {
	states := []StoreState{
		{Task: Task{"b-pipe", 3}, Changelog: map[string]int64{"s2": 7, "s1": 1 << 40}},
		{Task: Task{"a", 0}, Open: true, Changelog: map[string]int64{}},
	}
	want := []StoreState{states[1], states[0]} // sorted
	sameStates := func(t *testing.T, got []StoreState) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("decoded %d tasks, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].Task != want[i].Task || got[i].Open != want[i].Open || !maps.Equal(got[i].Changelog, want[i].Changelog) {
				t.Errorf("task %d: %+v, want %+v", i, got[i], want[i])
			}
		}
	}
	// The wire format of version 1, as every flowstate-v1 member before
	// version 2 writes it: it decodes, without acquisitions.
	v1, _ := hex.DecodeString("0102016100010006622d706970650600020273318080808080400273320e")
	old, err := DecodeSubscription(v1)
	if err != nil {
		t.Fatal(err)
	}
	sameStates(t, old.Stores)
	if old.Acquired != nil {
		t.Errorf("version 1 decoded acquisitions %v, want none", old.Acquired)
	}

	sub := Subscription{Stores: states, Acquired: map[TopicPartition]int32{
		{"in", 1}: 7, {"in", 0}: 7, {"other", 2}: 7, {"in", 4}: 9,
	}}
	b := EncodeSubscription(sub)
	// The wire format of version 2: version 1's tasks, then the owned
	// partitions by the generation they were acquired in.
	if got, want := hex.EncodeToString(b), "0202016100010006622d706970650600020273318080808080400273320e"+
		"02"+"0e"+"02"+"02696e"+"020002"+"056f74686572"+"0104"+"12"+"01"+"02696e"+"0108"; got != want {
		t.Errorf("encoded %s, want %s", got, want)
	}
	got, err := DecodeSubscription(b)
	if err != nil {
		t.Fatal(err)
	}
	sameStates(t, got.Stores)
	if !maps.Equal(got.Acquired, sub.Acquired) {
		t.Errorf("acquired %v, want %v", got.Acquired, sub.Acquired)
	}
	if again := EncodeSubscription(got); string(again) != string(b) {
		t.Error("encoding is not deterministic")
	}

	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"later version", append([]byte{SubscriptionVersion + 1}, b[1:]...)},
		{"truncated", b[:len(b)-1]},
		{"truncated tasks", v1[:len(v1)-1]},
		{"trailing bytes", append(b, 0)},
		{"version 1 with acquisitions", append([]byte{1}, b[1:]...)},
		{"huge count", []byte{SubscriptionVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"huge generation count", []byte{SubscriptionVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"generation out of range", []byte{SubscriptionVersion, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x20, 0}},
		{"negative partition", []byte{SubscriptionVersion, 0, 1, 2, 1, 1, 't', 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeSubscription(tc.b); !errors.Is(err, ErrUserData) {
				t.Errorf("decode = %v, want ErrUserData", err)
			}
		})
	}
	if s, err := DecodeSubscription(nil); err != nil || s.Stores != nil || s.Acquired != nil {
		t.Errorf("empty user data: %v, %v; want nothing", s, err)
	}
}

// TestStandbyAssignmentData round-trips the standby list through the
// SyncGroup assignment user data.
func TestStandbyAssignmentData(t *testing.T) {
	ks := []Standby{{Task{"count", 0}, false}, {Task{"count", 3}, true}, {Task{"join", 2}, false}}
	// The wire format of version 2.
	if got, want := hex.EncodeToString(EncodeStandbys(ks)), "020305636f756e74000005636f756e740601046a6f696e0400"; got != want {
		t.Errorf("encoded %s, want %s", got, want)
	}
	got, err := DecodeStandbys(EncodeStandbys(ks))
	if err != nil || !slices.Equal(got, ks) {
		t.Fatalf("decode(encode(%v)) = %v, %v", ks, got, err)
	}
	if got, err := DecodeStandbys(nil); err != nil || got != nil {
		t.Errorf("decode(nil) = %v, %v; want none", got, err)
	}
	// Version 1, without kind bytes, lists standbys only.
	v1 := []byte{1, 1, 5, 'c', 'o', 'u', 'n', 't', 6}
	if got, err := DecodeStandbys(v1); err != nil || !slices.Equal(got, []Standby{{Task{"count", 3}, false}}) {
		t.Errorf("decode(version 1) = %v, %v; want count/3, a standby", got, err)
	}
	full := EncodeStandbys(ks)
	for _, bad := range [][]byte{{9}, {StandbysVersion, 5}, append(full, 0), full[:len(full)-1], append(full[:len(full)-1:len(full)-1], 2)} {
		if _, err := DecodeStandbys(bad); !errors.Is(err, ErrUserData) {
			t.Errorf("decode(%v): %v, want ErrUserData", bad, err)
		}
	}

}
