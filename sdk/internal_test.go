package sdk

import (
	"errors"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/sdk/internal/stubhost"
)

// withRegistration runs a batch with the handler registered by calls to
// OnRecord, restoring the package's registration afterwards.
func withRegistration(t *testing.T, register func(), batch []byte) (int32, string) {
	t.Helper()
	prevH, prevN, prevO := handler, registrations, override
	t.Cleanup(func() {
		handler, registrations, override = prevH, prevN, prevO
		stubhost.Use(stubhost.New(stubhost.Config{}))
	})
	handler, registrations, override = nil, 0, nil
	register()
	h := stubhost.New(stubhost.Config{})
	stubhost.Use(h)
	return h.Run(batch)
}

func TestRegistration(t *testing.T) {
	ok := func(Record, Out) error { return nil }
	one := abi.AppendBatch(nil, []Record{{Topic: "in"}})
	tests := []struct {
		name     string
		register func()
		batch    []byte
		wantMsg  string // "" for success
	}{
		{name: "once", register: func() { OnRecord(ok) }, batch: one},
		{name: "never", register: func() {}, batch: one, wantMsg: "sdk: no handler: call sdk.OnRecord with a function in init"},
		{name: "nil", register: func() { OnRecord(nil) }, batch: one, wantMsg: "sdk: no handler: call sdk.OnRecord with a function in init"},
		{name: "twice", register: func() { OnRecord(ok); OnRecord(ok) }, batch: one, wantMsg: "sdk: sdk.OnRecord was called 2 times; call it once"},
		{name: "malformed batch", register: func() { OnRecord(ok) }, batch: one[:len(one)-1], wantMsg: "sdk: decode batch: abi: malformed encoding"},
		{name: "short batch", register: func() { OnRecord(ok) }, batch: []byte{1}, wantMsg: "sdk: decode batch: abi: malformed encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg := withRegistration(t, tt.register, tt.batch)
			if tt.wantMsg == "" && status != 0 || tt.wantMsg != "" && (status != 1 || msg != tt.wantMsg) {
				t.Fatalf("status %d %q, want message %q", status, msg, tt.wantMsg)
			}
		})
	}
}

func TestAllocAndProcessAt(t *testing.T) {
	prev := batchBuf
	t.Cleanup(func() { batchBuf = prev })
	batchBuf = nil
	b := allocBatch(0)
	if len(b) != minBatchBuf {
		t.Fatalf("first buffer is %d bytes, want %d", len(b), minBatchBuf)
	}
	if b2 := allocBatch(100); &b2[0] != &b[0] {
		t.Fatal("a smaller request replaced the buffer")
	}
	b3 := allocBatch(minBatchBuf + 1)
	if len(b3) < minBatchBuf+minBatchBuf/2 {
		t.Fatalf("grown buffer is %d bytes", len(b3))
	}
	if allocBatch(1<<31) != nil {
		t.Fatal("allocBatch(2 GiB) did not refuse")
	}

	h := stubhost.New(stubhost.Config{})
	stubhost.Use(h)
	t.Cleanup(func() { stubhost.Use(stubhost.New(stubhost.Config{})) })
	for _, tc := range []struct{ off, n uint32 }{{uint32(len(b3)), 1}, {1, uint32(len(b3))}, {1 << 31, 1 << 31}, {^uint32(0), 2}} {
		if status := processAt(tc.off, tc.n); status != 1 {
			t.Fatalf("processAt(%d, %d) = %d, want 1", tc.off, tc.n, status)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ p, want string }{
		{"", ""},
		{"a", "b"},
		{"ab", "ac"},
		{"a\xff", "b"},
		{"a\xff\xff", "b"},
		{"\xff", ""},
		{"\xff\xff", ""},
		{"a\x00", "a\x01"},
	}
	for _, tt := range tests {
		got := prefixEnd([]byte(tt.p))
		if string(got) != tt.want || (tt.want == "") != (got == nil) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

type stringer struct{}

func (stringer) String() string { return "stringer" }

func TestPanicText(t *testing.T) {
	tests := []struct {
		p    any
		want string
	}{
		{errors.New("e"), "e"},
		{"s", "s"},
		{stringer{}, "stringer"},
		{42, "42"},
		{3.5, "a value of a type the sdk cannot print"},
	}
	for _, tt := range tests {
		if got := panicText(tt.p); got != tt.want {
			t.Errorf("panicText(%v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestWhere(t *testing.T) {
	r := Record{Topic: "sentences", Partition: 3, Offset: 1234567890123}
	if got := where(&r); got != "sentences/3@1234567890123: " {
		t.Fatalf("where = %q", got)
	}
	if !strings.HasSuffix(where(&Record{}), "/0@0: ") {
		t.Fatal(where(&Record{}))
	}
}
