package changelog_test

import (
	"bytes"
	"fmt"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/state"
	"github.com/flowstate/flowstate/state/changelog"
)

func TestRoundTrip(t *testing.T) {
	l := changelog.Log{Stores: []string{"a", "b"}, Topics: []string{"app-a-changelog", "app-b-changelog"}, Partition: 3}
	tests := []struct {
		name   string
		change state.Change
		value  []byte // of the record
	}{
		{"put", state.Change{Store: 0, Key: []byte("k"), Value: []byte("v")}, []byte("v")},
		{"empty value is not a delete", state.Change{Store: 1, Key: []byte("k"), Value: []byte{}}, []byte{}},
		{"delete is a tombstone", state.Change{Store: 1, Key: []byte("k"), Value: []byte("stale"), Delete: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := l.Record(tt.change)
			if r.Topic != l.Topics[tt.change.Store] || r.Partition != 3 || !bytes.Equal(r.Key, tt.change.Key) {
				t.Fatalf("record %s/%d key %q, want %s/3 key %q", r.Topic, r.Partition, r.Key, l.Topics[tt.change.Store], tt.change.Key)
			}
			if (r.Value == nil) != (tt.value == nil) || !bytes.Equal(r.Value, tt.value) {
				t.Fatalf("value %q (nil %v), want %q (nil %v)", r.Value, r.Value == nil, tt.value, tt.value == nil)
			}
			got, ok := changelog.Change(tt.change.Store, r)
			if !ok {
				t.Fatal("Change: not ok for a data record")
			}
			want := tt.change
			if want.Delete {
				want.Value = nil
			}
			if got.Store != want.Store || got.Delete != want.Delete || !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) {
				t.Fatalf("decoded %+v, want %+v", got, want)
			}
		})
	}
}

func TestControlRecord(t *testing.T) {
	r := &kgo.Record{Key: []byte{0, 0, 0, 0}, Attrs: kgo.NewRecordAttrs(kgo.RecordAttrsOpts{Control: true, Transactional: true})}
	if _, ok := changelog.Change(0, r); ok {
		t.Fatal("a transaction marker decoded as a change")
	}
}

func TestNext(t *testing.T) {
	l := changelog.Log{Stores: []string{"a", "b", "c"}, Topics: []string{"ta", "tb", "tc"}}
	changes := []state.Change{{Store: 0}, {Store: 1}, {Store: 0}}
	recs := []*kgo.Record{{Offset: 7}, {Offset: 2}, {Offset: 8}}
	got := l.Next(changes, recs)
	want := map[string]int64{"a": 9, "b": 3}
	if !maps.Equal(got, want) {
		t.Fatalf("Next = %v, want %v", got, want)
	}
}

func ExampleTopic() {
	fmt.Println(changelog.Topic("wordcount-app", "counts"))
	// Output: wordcount-app-counts-changelog
}
