package sdk_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/sdk"
	"github.com/flowstate/flowstate/sdk/sdktest"
)

// runOne runs fn as the handler of one batch of one record and returns
// fn's error; the batch itself succeeds, so fn's writes are committed.
func runOne(t *testing.T, cfg sdktest.Config, seed map[string]string, fn func(sdk.Out) error) (*sdktest.Harness, error) {
	t.Helper()
	var got error
	cfg.Handler = func(_ sdk.Record, out sdk.Out) error {
		got = fn(out)
		return nil
	}
	h := sdktest.New(cfg)
	t.Cleanup(h.Close)
	for k, v := range seed {
		h.Put(cfg.Stores[0], k, []byte(v))
	}
	if err := h.Feed("in", "k", "v"); err != nil {
		t.Fatal(err)
	}
	return h, got
}

var (
	st      = sdk.Store("st")
	missing = sdk.Store("missing")
)

func TestStore(t *testing.T) {
	big := strings.Repeat("x", 10_000) // larger than the SDK's first value buffer
	tests := []struct {
		name      string
		cfg       sdktest.Config
		seed      map[string]string
		run       func() error
		wantErr   error // matched with errors.Is
		wantStore map[string]string
	}{
		{
			name: "get absent",
			run: func() error {
				v, ok, err := st.Get([]byte("a"))
				return expect(v == nil && !ok && err == nil, "Get = %q %v %v", v, ok, err)
			},
			wantStore: map[string]string{},
		},
		{
			name: "get copies",
			seed: map[string]string{"a": "1"},
			run: func() error {
				v, ok, err := st.Get([]byte("a"))
				if err != nil || !ok || string(v) != "1" {
					return expect(false, "Get = %q %v %v", v, ok, err)
				}
				v[0] = '9' // must not reach the SDK's buffer or the store
				v2, _, _ := st.Get([]byte("a"))
				return expect(string(v2) == "1", "second Get = %q", v2)
			},
			wantStore: map[string]string{"a": "1"},
		},
		{
			name: "empty value is present",
			seed: map[string]string{"a": ""},
			run: func() error {
				v, ok, err := st.Get([]byte("a"))
				return expect(v != nil && len(v) == 0 && ok && err == nil, "Get = %q %v %v", v, ok, err)
			},
			wantStore: map[string]string{"a": ""},
		},
		{
			name: "value larger than the buffer",
			run: func() error {
				if err := st.Put([]byte("big"), []byte(big)); err != nil {
					return err
				}
				v, ok, err := st.Get([]byte("big"))
				if err != nil {
					return err
				}
				return expect(ok && string(v) == big, "Get returned %d bytes", len(v))
			},
			wantStore: map[string]string{"big": big},
		},
		{
			name: "append get",
			seed: map[string]string{"a": "val"},
			run: func() error {
				dst := []byte("pre:")
				dst, ok, err := st.AppendGet(dst, []byte("a"))
				if err != nil || !ok || string(dst) != "pre:val" {
					return expect(false, "AppendGet = %q %v %v", dst, ok, err)
				}
				dst, ok, err = st.AppendGet(dst, []byte("absent"))
				return expect(string(dst) == "pre:val" && !ok && err == nil, "AppendGet absent = %q %v %v", dst, ok, err)
			},
			wantStore: map[string]string{"a": "val"},
		},
		{
			name: "put overwrites, delete removes, delete absent is fine",
			seed: map[string]string{"a": "1", "b": "2"},
			run: func() error {
				return errors.Join(st.Put([]byte("a"), []byte("one")), st.Delete([]byte("b")), st.Delete([]byte("zz")),
					st.Put(nil, []byte("empty key")))
			},
			wantStore: map[string]string{"a": "one", "": "empty key"},
		},
		{
			name: "int64",
			seed: map[string]string{"n": string(sdk.Int64Bytes(41))},
			run: func() error {
				n, err := st.GetInt64([]byte("n"))
				if err != nil || n != 41 {
					return expect(false, "GetInt64 = %d %v", n, err)
				}
				if n, err := st.GetInt64([]byte("absent")); err != nil || n != 0 {
					return expect(false, "GetInt64 absent = %d %v", n, err)
				}
				return errors.Join(st.PutInt64([]byte("n"), n+1), st.PutInt64([]byte("neg"), -2))
			},
			wantStore: map[string]string{"n": string(sdk.Int64Bytes(42)), "neg": "\xff\xff\xff\xff\xff\xff\xff\xfe"},
		},
		{
			name: "int64 of another length",
			seed: map[string]string{"n": "abc"},
			run: func() error {
				_, err := st.GetInt64([]byte("n"))
				return err
			},
			wantErr:   sdk.ErrNotInt64,
			wantStore: map[string]string{"n": "abc"},
		},
		{
			name: "int64 of a long value",
			seed: map[string]string{"n": big},
			run: func() error {
				_, err := st.GetInt64([]byte("n"))
				return err
			},
			wantErr:   sdk.ErrNotInt64,
			wantStore: map[string]string{"n": big},
		},
		{
			name:      "value too large",
			cfg:       sdktest.Config{MaxValueSize: 4},
			run:       func() error { return st.Put([]byte("a"), []byte("12345")) },
			wantErr:   abi.ErrTooLarge,
			wantStore: map[string]string{},
		},
		{
			name:      "key too large",
			cfg:       sdktest.Config{MaxKeySize: 2},
			run:       func() error { return st.PutInt64([]byte("abc"), 1) },
			wantErr:   abi.ErrTooLarge,
			wantStore: map[string]string{},
		},
		{
			name: "undeclared store fails every call",
			run: func() error {
				_, _, err1 := missing.Get([]byte("a"))
				err2 := missing.Put([]byte("a"), nil)
				err3 := missing.Delete([]byte("a"))
				_, err4 := missing.GetInt64([]byte("a"))
				it := missing.Range(nil, nil)
				defer it.Close()
				if it.Next() {
					return errors.New("Next on an undeclared store returned true")
				}
				for _, err := range []error{err1, err2, err3, err4, it.Err()} {
					if !errors.Is(err, abi.ErrNotFound) {
						return expect(false, "err = %v, want NOT_FOUND", err)
					}
				}
				return err1
			},
			wantErr:   abi.ErrNotFound,
			wantStore: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Stores = []string{"st"}
			h, err := runOne(t, tt.cfg, tt.seed, func(sdk.Out) error { return tt.run() })
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := h.Store("st"); !maps.Equal(got, tt.wantStore) {
				t.Fatalf("store = %q, want %q", got, tt.wantStore)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	_, err := runOne(t, sdktest.Config{Stores: []string{"st"}, MaxValueSize: 1}, nil, func(sdk.Out) error {
		return st.Put([]byte("a"), []byte("ab"))
	})
	if got, want := err.Error(), "sdk: kv_put st: abi: TOO_LARGE"; got != want {
		t.Fatalf("error = %q, want %q", got, want)
	}
	var ae *abi.Error
	if !errors.As(err, &ae) || ae.Code != abi.TooLarge || ae.Code.Retryable() {
		t.Fatalf("errors.As = %v", ae)
	}
}

func TestRange(t *testing.T) {
	small := map[string]string{"a": "1", "b": "2", "b\x00": "3", "b\xff": "4", "ba": "5", "c": "6", "\xff": "7", "\xff\xff": "8"}
	bigVal := strings.Repeat("v", 5000) // one entry larger than the first iterator buffer
	big := map[string]string{"k1": bigVal, "k2": bigVal + "w", "k3": "small"}
	many := map[string]string{}
	for i := range 1000 {
		many[string(sdk.Int64Bytes(int64(i)))] = "value"
	}
	all := func(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

	tests := []struct {
		name string
		seed map[string]string
		open func() *sdk.Iterator
		want []string // keys, in order
	}{
		{name: "all", seed: small, open: func() *sdk.Iterator { return st.Range(nil, nil) }, want: all(small)},
		{name: "empty bounds are unbounded", seed: small, open: func() *sdk.Iterator { return st.Range([]byte{}, []byte{}) }, want: all(small)},
		{name: "start inclusive end exclusive", seed: small, open: func() *sdk.Iterator { return st.Range([]byte("b"), []byte("c")) },
			want: []string{"b", "b\x00", "ba", "b\xff"}},
		{name: "open start", seed: small, open: func() *sdk.Iterator { return st.Range(nil, []byte("b\x00")) }, want: []string{"a", "b"}},
		{name: "open end", seed: small, open: func() *sdk.Iterator { return st.Range([]byte("c"), nil) }, want: []string{"c", "\xff", "\xff\xff"}},
		{name: "empty range", seed: small, open: func() *sdk.Iterator { return st.Range([]byte("bb"), []byte("bz")) }, want: nil},
		{name: "prefix", seed: small, open: func() *sdk.Iterator { return st.Prefix([]byte("b")) }, want: []string{"b", "b\x00", "ba", "b\xff"}},
		{name: "prefix of 0xff", seed: small, open: func() *sdk.Iterator { return st.Prefix([]byte("\xff")) }, want: []string{"\xff", "\xff\xff"}},
		{name: "empty prefix", seed: small, open: func() *sdk.Iterator { return st.Prefix(nil) }, want: all(small)},
		{name: "entries larger than the buffer", seed: big, open: func() *sdk.Iterator { return st.Range(nil, nil) }, want: all(big)},
		{name: "many chunks", seed: many, open: func() *sdk.Iterator { return st.Range(nil, nil) }, want: all(many)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runOne(t, sdktest.Config{Stores: []string{"st"}}, tt.seed, func(sdk.Out) error {
				it := tt.open()
				defer it.Close()
				var got []string
				for it.Next() {
					got = append(got, string(it.Key()))
					if v := string(it.Value()); v != tt.seed[string(it.Key())] {
						return expect(false, "value of %q = %q, want %q", it.Key(), v, tt.seed[string(it.Key())])
					}
				}
				if err := it.Err(); err != nil {
					return err
				}
				if it.Next() || it.Key() != nil {
					return errors.New("Next after the end returned an entry")
				}
				return expect(slices.Equal(got, tt.want), "keys = %q, want %q", got, tt.want)
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIteratorLifetime(t *testing.T) {
	t.Run("limit and close", func(t *testing.T) {
		_, err := runOne(t, sdktest.Config{Stores: []string{"st"}, MaxIterators: 1}, map[string]string{"a": "1"}, func(sdk.Out) error {
			it1 := st.Range(nil, nil)
			it2 := st.Range(nil, nil)
			if it2.Next() || !errors.Is(it2.Err(), abi.ErrLimitExceeded) {
				return expect(false, "second iterator err = %v, want LIMIT_EXCEEDED", it2.Err())
			}
			it1.Close()
			it1.Close() // idempotent
			it3 := st.Range(nil, nil)
			for it3.Next() {
			}
			// An exhausted iterator has given its handle back already.
			it4 := st.Range(nil, nil)
			defer it4.Close()
			if !it4.Next() {
				return expect(false, "fourth iterator: %v", it4.Err())
			}
			return it3.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("used after its batch", func(t *testing.T) {
		var kept *sdk.Iterator
		var errs []error
		h := sdktest.New(sdktest.Config{Stores: []string{"st"}, Handler: func(r sdk.Record, _ sdk.Out) error {
			if kept == nil {
				kept = st.Range(nil, nil) // left open: the host closes it with the batch
				return nil
			}
			other := st.Range(nil, nil) // may get the same handle number
			defer other.Close()
			if kept.Next() {
				errs = append(errs, errors.New("stale iterator returned an entry"))
			}
			errs = append(errs, kept.Err())
			kept.Close() // must not close other's handle
			if !other.Next() {
				errs = append(errs, errors.New("other iterator closed by the stale one: "+fmt.Sprint(other.Err())))
			}
			return nil
		}})
		t.Cleanup(h.Close)
		h.Put("st", "a", []byte("1"))
		for range 2 {
			if err := h.Feed("in", "k", "v"); err != nil {
				t.Fatal(err)
			}
		}
		if len(errs) != 1 || !errors.Is(errs[0], abi.ErrBadHandle) {
			t.Fatalf("errs = %v, want one wrapping BAD_HANDLE", errs)
		}
	})
}

func TestEmit(t *testing.T) {
	tests := []struct {
		name    string
		cfg     sdktest.Config
		emit    func(sdk.Out) error
		want    []string
		wantErr error
	}{
		{name: "key and value", emit: func(o sdk.Out) error { return o.Emit("out", []byte("k"), []byte("v")) },
			want: []string{`out "k"="v"`}},
		{name: "null key and value", emit: func(o sdk.Out) error { return o.Emit("out", nil, nil) },
			want: []string{`out null=null`}},
		{name: "empty key and value", emit: func(o sdk.Out) error { return o.Emit("out", []byte{}, []byte{}) },
			want: []string{`out ""=""`}},
		{name: "headers", emit: func(o sdk.Out) error {
			return o.EmitRecord("out2", []byte("k"), []byte("v"), []sdk.Header{{Key: "h1", Value: []byte("x")}, {Key: "h2"}})
		}, want: []string{`out2 "k"="v" ["h1"="x"] ["h2"=null]`}},
		{name: "empty headers", emit: func(o sdk.Out) error { return o.EmitRecord("out", []byte("k"), nil, []sdk.Header{}) },
			want: []string{`out "k"=null`}},
		{name: "several topics", emit: func(o sdk.Out) error {
			return errors.Join(o.Emit("out", nil, []byte("1")), o.Emit("out2", nil, []byte("2")), o.Emit("out", nil, []byte("3")))
		}, want: []string{`out null="1"`, `out2 null="2"`, `out null="3"`}},
		{name: "undeclared topic", emit: func(o sdk.Out) error { return o.Emit("nope", nil, nil) }, wantErr: abi.ErrNotFound},
		{name: "undeclared topic stays an error", emit: func(o sdk.Out) error {
			o.Emit("nope", nil, nil)
			return errors.Join(o.Emit("out", nil, []byte("ok")), o.Emit("nope", nil, nil))
		}, want: []string{`out null="ok"`}, wantErr: abi.ErrNotFound},
		{name: "too many", cfg: sdktest.Config{MaxEmits: 2}, emit: func(o sdk.Out) error {
			return errors.Join(o.Emit("out", nil, nil), o.Emit("out", nil, nil), o.Emit("out", nil, nil))
		}, want: []string{`out null=null`, `out null=null`}, wantErr: abi.ErrLimitExceeded},
		{name: "too large", cfg: sdktest.Config{MaxValueSize: 1}, emit: func(o sdk.Out) error {
			return o.Emit("out", nil, []byte("12"))
		}, wantErr: abi.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Topics = []string{"out", "out2"}
			tt.cfg.Stores = []string{"st"}
			h, err := runOne(t, tt.cfg, nil, tt.emit)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := sdktest.Strings(h.Emits()); !slices.Equal(got, tt.want) {
				t.Fatalf("emits = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOutAfterHandler(t *testing.T) {
	var kept sdk.Out
	h := sdktest.New(sdktest.Config{Topics: []string{"out"}, Handler: func(_ sdk.Record, out sdk.Out) error {
		kept = out
		return nil
	}})
	t.Cleanup(h.Close)
	if err := h.Feed("in", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := kept.Emit("out", nil, nil); err == nil {
		t.Fatal("Emit with an Out kept past its handler call succeeded")
	}
	if err := (sdk.Out{}).Emit("out", nil, nil); err == nil {
		t.Fatal("Emit with a zero Out succeeded")
	}
	if got := h.Emits(); len(got) != 0 {
		t.Fatalf("emits = %v", got)
	}
}

func TestBatch(t *testing.T) {
	counter := sdk.Store("st")
	// count stores a per-key count and emits it; keys starting with "fail"
	// fail, "panic" panics.
	count := func(r sdk.Record, out sdk.Out) error {
		n, err := counter.GetInt64(r.Key)
		if err != nil {
			return err
		}
		if err := counter.PutInt64(r.Key, n+1); err != nil {
			return err
		}
		if err := out.Emit("out", r.Key, r.Value); err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(r.Key, []byte("fail")):
			return errors.New("refused " + string(r.Key))
		case bytes.HasPrefix(r.Key, []byte("panic")):
			var m map[string]int
			m["x"]++ // a runtime error
		}
		return nil
	}
	type batch struct {
		keys    []string
		wantErr string // the fail message; "" for success
	}
	tests := []struct {
		name      string
		batches   []batch
		wantEmits []string
		wantStore map[string]string
	}{
		{
			name:      "one batch",
			batches:   []batch{{keys: []string{"a", "b", "a"}}},
			wantEmits: []string{`out "a"="v0"`, `out "b"="v1"`, `out "a"="v2"`},
			wantStore: map[string]string{"a": string(sdk.Int64Bytes(2)), "b": string(sdk.Int64Bytes(1))},
		},
		{
			name: "failed batch leaves nothing",
			batches: []batch{
				{keys: []string{"a"}},
				{keys: []string{"a", "fail1", "b"}, wantErr: "in/0@2: refused fail1"},
				{keys: []string{"b"}},
			},
			wantEmits: []string{`out "a"="v0"`, `out "b"="v4"`},
			wantStore: map[string]string{"a": string(sdk.Int64Bytes(1)), "b": string(sdk.Int64Bytes(1))},
		},
		{
			name: "panic is recovered",
			batches: []batch{
				{keys: []string{"a", "panic"}, wantErr: "in/0@1: sdk: handler panicked: assignment to entry in nil map"},
				{keys: []string{"a"}},
			},
			wantEmits: []string{`out "a"="v2"`},
			wantStore: map[string]string{"a": string(sdk.Int64Bytes(1))},
		},
		{
			name:      "empty batch",
			batches:   []batch{{}},
			wantStore: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sdktest.New(sdktest.Config{Stores: []string{"st"}, Topics: []string{"out"}, Handler: count})
			t.Cleanup(h.Close)
			off := int64(0)
			for _, b := range tt.batches {
				var recs []sdk.Record
				for _, k := range b.keys {
					recs = append(recs, sdk.Record{Topic: "in", Offset: off, Key: []byte(k), Value: []byte("v" + strconv.FormatInt(off, 10))})
					off++
				}
				err := h.Process(recs...)
				var be *sdktest.BatchError
				switch {
				case b.wantErr == "" && err != nil:
					t.Fatalf("batch %q: %v", b.keys, err)
				case b.wantErr != "" && (!errors.As(err, &be) || be.Message != b.wantErr || be.Status != 1):
					t.Fatalf("batch %q: err = %v, want message %q", b.keys, err, b.wantErr)
				}
			}
			if got := sdktest.Strings(h.Emits()); !slices.Equal(got, tt.wantEmits) {
				t.Fatalf("emits = %q, want %q", got, tt.wantEmits)
			}
			if got := h.Store("st"); !maps.Equal(got, tt.wantStore) {
				t.Fatalf("store = %q, want %q", got, tt.wantStore)
			}
		})
	}
}

func TestRecordFields(t *testing.T) {
	in := []sdk.Record{
		{Topic: "a", Partition: 3, Offset: 7, Timestamp: 1700000000123, Key: []byte("k"), Value: []byte("v"),
			Headers: []sdk.Header{{Key: "h", Value: []byte("x")}, {Key: "n"}}},
		{Topic: "b", Partition: 3, Offset: 1, Key: nil, Value: nil},
		{Topic: "a", Partition: 3, Offset: 8, Key: []byte{}, Value: []byte{}},
	}
	var got []sdk.Record
	h := sdktest.New(sdktest.Config{Handler: func(r sdk.Record, _ sdk.Out) error {
		// The record aliases the batch: keep a copy.
		c := r
		c.Key, c.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
		c.Headers = nil
		for _, hd := range r.Headers {
			c.Headers = append(c.Headers, sdk.Header{Key: hd.Key, Value: bytes.Clone(hd.Value)})
		}
		got = append(got, c)
		return nil
	}})
	t.Cleanup(h.Close)
	if err := h.Process(in...); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("got %d records, want %d", len(got), len(in))
	}
	for i := range in {
		g, w := got[i], in[i]
		if g.Topic != w.Topic || g.Partition != w.Partition || g.Offset != w.Offset || g.Timestamp != w.Timestamp ||
			(g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) ||
			(g.Value == nil) != (w.Value == nil) || !bytes.Equal(g.Value, w.Value) || len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d = %+v, want %+v", i, g, w)
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || (g.Headers[j].Value == nil) != (w.Headers[j].Value == nil) {
				t.Fatalf("record %d header %d = %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

func TestLog(t *testing.T) {
	h := sdktest.New(sdktest.Config{Handler: func(sdk.Record, sdk.Out) error {
		sdk.Debug("d")
		sdk.Info("i")
		sdk.Warn("w")
		sdk.Error("e")
		sdk.Info("")
		return nil
	}})
	t.Cleanup(h.Close)
	if err := h.Feed("in", "k", "v"); err != nil {
		t.Fatal(err)
	}
	want := []sdktest.Log{{Level: slog.LevelDebug, Msg: "d"}, {Level: slog.LevelInfo, Msg: "i"}, {Level: slog.LevelWarn, Msg: "w"}, {Level: slog.LevelError, Msg: "e"}, {Level: slog.LevelInfo, Msg: ""}}
	if got := h.Logs(); !slices.Equal(got, want) {
		t.Fatalf("logs = %v, want %v", got, want)
	}
}

func TestInt64Bytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{1, "\x00\x00\x00\x00\x00\x00\x00\x01"},
		{258, "\x00\x00\x00\x00\x00\x00\x01\x02"},
		{-1, "\xff\xff\xff\xff\xff\xff\xff\xff"},
		{1 << 62, "\x40\x00\x00\x00\x00\x00\x00\x00"},
	}
	for _, tt := range tests {
		b := sdk.Int64Bytes(tt.n)
		if string(b) != tt.want {
			t.Errorf("Int64Bytes(%d) = %x, want %x", tt.n, b, tt.want)
		}
		if n, err := sdk.BytesInt64(b); n != tt.n || err != nil {
			t.Errorf("BytesInt64(%x) = %d, %v", b, n, err)
		}
	}
	for _, b := range [][]byte{nil, {1}, make([]byte, 9)} {
		if _, err := sdk.BytesInt64(b); !errors.Is(err, sdk.ErrNotInt64) {
			t.Errorf("BytesInt64(%x) err = %v", b, err)
		}
	}
}

func TestHarnessIsolation(t *testing.T) {
	// Handles cached by package-level stores are resolved again for each
	// harness, whose stores may be declared in another order.
	for _, stores := range [][]string{{"st"}, {"other", "st"}} {
		h := sdktest.New(sdktest.Config{Stores: stores, Handler: func(r sdk.Record, _ sdk.Out) error {
			return st.Put(r.Key, r.Value)
		}})
		if err := h.Feed("in", "k", "v"); err != nil {
			t.Fatal(err)
		}
		if got := h.Store("st"); !maps.Equal(got, map[string]string{"k": "v"}) {
			t.Fatalf("stores %q: st = %q", stores, got)
		}
		h.Close()
	}
}

func BenchmarkProcess(b *testing.B) {
	counts := sdk.Store("st")
	h := sdktest.New(sdktest.Config{Stores: []string{"st"}, Topics: []string{"out"}, Handler: func(r sdk.Record, out sdk.Out) error {
		n, err := counts.GetInt64(r.Key)
		if err != nil {
			return err
		}
		if err := counts.PutInt64(r.Key, n+1); err != nil {
			return err
		}
		return out.Emit("out", r.Key, r.Value)
	}})
	b.Cleanup(h.Close)
	recs := make([]sdk.Record, 100)
	for i := range recs {
		recs[i] = sdk.Record{Topic: "in", Offset: int64(i), Key: []byte("key" + strconv.Itoa(i%10)), Value: []byte("value")}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := h.Process(recs...); err != nil {
			b.Fatal(err)
		}
		h.TakeEmits()
		n += len(recs)
	}
	// Natively this includes the stub host's own copies and batch encoding.
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

func expect(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}
