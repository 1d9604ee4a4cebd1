package field

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

var errSentinel = errors.New("test: invalid")

func TestNest(t *testing.T) {
	inner := List{
		{Key: "memory_mb", Msg: "0 is not positive", Err: errSentinel},
		{Key: "", Msg: `"x" is not fail or skip`},
	}
	var outer List
	outer.Add("application_id", "required")
	outer.Nest("pipelines.p.limits", inner.Err())
	outer.Nest("restore.on_truncated", &Error{Msg: `"ignore" is not rebuild or fail`})
	outer.Nest("rocksdb", errors.Join(fmt.Errorf("wrapped: %w", &Error{Key: "compression", Msg: "bad"}), errors.New("plain")))
	outer.Nest("nothing", nil)

	var got []string
	for _, e := range outer {
		got = append(got, e.Error())
	}
	want := []string{
		"application_id: required",
		"pipelines.p.limits.memory_mb: 0 is not positive",
		`pipelines.p.limits: "x" is not fail or skip`,
		`restore.on_truncated: "ignore" is not rebuild or fail`,
		"rocksdb.compression: bad",
		"rocksdb: plain",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("nested errors:\n%q\nwant\n%q", got, want)
	}
	if !errors.Is(outer.Err(), errSentinel) {
		t.Error("nested List does not wrap the inner sentinel")
	}
	if inner[0].Key != "memory_mb" {
		t.Errorf("Nest changed the inner error's key to %q", inner[0].Key)
	}
	if fe, ok := errors.AsType[*Error](outer.Err()); !ok || fe.Key != "application_id" {
		t.Errorf("errors.As found %v", fe)
	}
}

func TestEmpty(t *testing.T) {
	var l List
	if l.Err() != nil {
		t.Fatal("empty List.Err is not nil")
	}
	if got := Errors(nil); got != nil {
		t.Fatalf("Errors(nil) = %v", got)
	}
}

func TestJoin(t *testing.T) {
	for _, tt := range []struct{ prefix, key, want string }{
		{"", "a", "a"},
		{"a", "", "a"},
		{"a.b", "c", "a.b.c"},
		{"", "", ""},
	} {
		if got := Join(tt.prefix, tt.key); got != tt.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tt.prefix, tt.key, got, tt.want)
		}
	}
}
