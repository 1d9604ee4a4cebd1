package stubhost

import (
	"encoding/binary"
	"testing"

	"github.com/flowstate/flowstate/abi"
)

func TestCodes(t *testing.T) {
	h := New(Config{Stores: []string{"s"}, Topics: []string{"t"}, MaxKeySize: 3})
	Use(h)
	t.Cleanup(func() { Use(New(Config{})) })
	h.Put(0, "k", []byte("value"))

	entry := abi.EntrySize([]byte("k"), []byte("value"))
	tests := []struct {
		name string
		call func() int32
		want abi.Code
	}{
		{"store_open unknown", func() int32 { return StoreOpen([]byte("x")) }, abi.NotFound},
		{"store_open", func() int32 { return StoreOpen([]byte("s")) }, 0},
		{"topic_open unknown", func() int32 { return TopicOpen([]byte("s")) }, abi.NotFound},
		{"kv_get bad handle", func() int32 { return KVGet(1, []byte("k"), nil) }, abi.BadHandle},
		{"kv_get absent", func() int32 { return KVGet(0, []byte("x"), nil) }, abi.NotFound},
		{"kv_get returns the full length", func() int32 { return KVGet(0, []byte("k"), make([]byte, 2)) }, 5},
		{"kv_put key too large", func() int32 { return KVPut(0, []byte("kkkk"), nil) }, abi.TooLarge},
		{"kv_delete absent", func() int32 { return KVDelete(0, []byte("x")) }, 0},
		{"kv_range bad handle", func() int32 { return KVRange(-1, nil, nil) }, abi.BadHandle},
		{"iter_next bad handle", func() int32 { return IterNext(5, make([]byte, 64)) }, abi.BadHandle},
		{"iter_next buffer too small", func() int32 {
			it := KVRange(0, nil, nil)
			buf := make([]byte, 4)
			c := IterNext(it, buf)
			if got := binary.LittleEndian.Uint32(buf); got != uint32(entry) {
				t.Errorf("size written = %d, want %d", got, entry)
			}
			if c2 := IterNext(it, make([]byte, entry)); c2 != int32(entry) {
				t.Errorf("retry = %d, want %d (entry not consumed)", c2, entry)
			}
			return c
		}, abi.BufferTooSmall},
		{"iter_next tiny buffer", func() int32 { return IterNext(KVRange(0, nil, nil), make([]byte, 2)) }, abi.BufferTooSmall},
		{"iter_close twice", func() int32 {
			it := KVRange(0, nil, nil)
			IterClose(it)
			return IterClose(it)
		}, abi.BadHandle},
		{"emit bad handle", func() int32 { return Emit(1, nil, nil, nil) }, abi.BadHandle},
		{"emit malformed headers", func() int32 { return Emit(0, nil, nil, []byte{1, 0, 0, 0}) }, abi.Invalid},
		{"emit key too large", func() int32 { return Emit(0, []byte("kkkk"), nil, nil) }, abi.TooLarge},
		{"log bad level", func() int32 { return LogMsg(1, nil) }, abi.Invalid},
		{"log", func() int32 { return LogMsg(abi.LevelWarn, []byte("m")) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := abi.Code(tt.call()); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRollback(t *testing.T) {
	h := New(Config{Stores: []string{"s"}, Topics: []string{"t"}})
	Use(h)
	t.Cleanup(func() { Use(New(Config{})) })
	h.Put(0, "a", []byte("1"))
	h.begin()
	KVPut(0, []byte("a"), []byte("2"))
	KVPut(0, []byte("b"), []byte("3"))
	Emit(0, nil, []byte("x"), nil)
	it := KVRange(0, nil, nil)
	h.end(false)
	if v, _ := h.Get(0, "a"); string(v) != "1" {
		t.Fatalf("a = %q after a failed batch", v)
	}
	if _, ok := h.Get(0, "b"); ok {
		t.Fatal("b written by a failed batch")
	}
	if len(h.Emits()) != 0 {
		t.Fatalf("emits = %v", h.Emits())
	}
	if c := IterNext(it, make([]byte, 64)); abi.Code(c) != abi.BadHandle {
		t.Fatalf("iterator survived its batch: %d", c)
	}
}
