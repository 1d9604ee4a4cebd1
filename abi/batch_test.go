package abi

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		recs []Record
	}{
		{name: "empty", recs: nil},
		{name: "one", recs: []Record{{Topic: "in", Partition: 3, Offset: 42, Timestamp: 1700000000000, Key: []byte("k"), Value: []byte("v")}}},
		{name: "nulls", recs: []Record{{Topic: "in", Key: nil, Value: nil}}},
		{name: "empty not null", recs: []Record{{Topic: "in", Key: []byte{}, Value: []byte{}}}},
		{name: "headers", recs: []Record{{Topic: "a", Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h1", Value: []byte("x")}, {Key: "h2", Value: nil}}}}},
		{name: "topics change", recs: []Record{{Topic: "a", Offset: 1}, {Topic: "b", Offset: 2}, {Topic: "a", Offset: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendBatch(nil, tt.recs)
			if len(b) != BatchSize(tt.recs) {
				t.Fatalf("BatchSize = %d, encoded %d bytes", BatchSize(tt.recs), len(b))
			}
			r, err := NewBatchReader(b)
			if err != nil {
				t.Fatal(err)
			}
			if r.Len() != len(tt.recs) {
				t.Fatalf("Len = %d, want %d", r.Len(), len(tt.recs))
			}
			var got []Record
			for {
				var rec Record
				ok, err := r.Next(&rec)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				if len(rec.Headers) == 0 {
					rec.Headers = nil
				}
				got = append(got, rec)
			}
			if !reflect.DeepEqual(got, tt.recs) {
				t.Fatalf("got %+v, want %+v", got, tt.recs)
			}
		})
	}
}

func TestBatchMalformed(t *testing.T) {
	good := AppendBatch(nil, []Record{{Topic: "in", Key: []byte("key"), Value: []byte("value"), Headers: []Header{{Key: "h", Value: []byte("v")}}}})
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "no count", b: []byte{1, 0}},
		{name: "count too high", b: append([]byte{2, 0, 0, 0}, good[4:]...)},
		{name: "trailing bytes", b: append(bytes.Clone(good), 0)},
		{name: "truncated", b: good[:len(good)-1]},
		{name: "huge length", b: []byte{1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := readAll(tt.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func readAll(b []byte) error {
	r, err := NewBatchReader(b)
	if err != nil {
		return err
	}
	var rec Record
	for {
		ok, err := r.Next(&rec)
		if err != nil || !ok {
			return err
		}
	}
}

func TestEntriesAndHeaders(t *testing.T) {
	b := AppendEntry(nil, []byte("k1"), []byte("v1"))
	b = AppendEntry(b, []byte("k2"), []byte{})
	if len(b) != EntrySize([]byte("k1"), []byte("v1"))+EntrySize([]byte("k2"), nil) {
		t.Fatalf("EntrySize does not match the encoding")
	}
	k, v, rest, err := NextEntry(b)
	if err != nil || string(k) != "k1" || string(v) != "v1" {
		t.Fatalf("first entry = %q %q %v", k, v, err)
	}
	k, v, rest, err = NextEntry(rest)
	if err != nil || string(k) != "k2" || len(v) != 0 || len(rest) != 0 {
		t.Fatalf("second entry = %q %q rest %d %v", k, v, len(rest), err)
	}
	if _, _, _, err := NextEntry([]byte{5, 0, 0, 0, 'a'}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated entry err = %v", err)
	}

	hs := []Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}}
	got, err := DecodeHeaders(AppendHeaders(nil, hs))
	if err != nil || !reflect.DeepEqual(got, hs) {
		t.Fatalf("headers = %+v, %v", got, err)
	}
	if _, err := DecodeHeaders([]byte{1, 0, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated headers err = %v", err)
	}
}

func TestCodes(t *testing.T) {
	tests := []struct {
		code      Code
		name      string
		retryable bool
		err       error
	}{
		{OK, "OK", false, nil},
		{NotFound, "NOT_FOUND", false, ErrNotFound},
		{BadPointer, "BAD_POINTER", false, ErrBadPointer},
		{Internal, "INTERNAL", true, ErrInternal},
		{-99, "CODE(-99)", false, &Error{Code: -99}},
		{7, "CODE(7)", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.code.String() != tt.name || tt.code.Retryable() != tt.retryable {
				t.Fatalf("%d: %s retryable=%v", tt.code, tt.code, tt.code.Retryable())
			}
			err := tt.code.Err()
			if (err == nil) != (tt.err == nil) || (err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("Err() = %v, want %v", err, tt.err)
			}
		})
	}
	for c := Code(-1); c >= Internal; c-- {
		if !errors.Is(c.Err(), &Error{Code: c}) {
			t.Fatalf("code %d maps to %v", c, c.Err())
		}
	}
}

func FuzzBatchReader(f *testing.F) {
	f.Add(AppendBatch(nil, []Record{{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h"}}}}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewBatchReader(b)
		if err != nil {
			return
		}
		var recs []Record
		for {
			var rec Record
			ok, err := r.Next(&rec)
			if err != nil {
				return
			}
			if !ok {
				break
			}
			recs = append(recs, rec)
		}
		// A batch that decodes re-encodes to the same bytes.
		if got := AppendBatch(nil, recs); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, b)
		}
	})
}
