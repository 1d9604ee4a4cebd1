package sdk

import (
	"encoding/binary"

	"github.com/flowstate/flowstate/abi"
)

// KV is a handle to one of the pipeline's key-value stores. Make one per
// store with [Store], usually in a package variable. Keys and values are
// byte strings; keys sort in byte order.
type KV struct {
	name string
	inst uint32 // the instance h and err belong to; 0 before the first use
	h    int32
	err  error
}

// instance numbers the host instances the SDK has talked to: always 1 in a
// module; native tests start a new one per sdktest harness, so cached
// handles are resolved again.
var instance uint32 = 1

// Store returns a handle to the store called name. Nothing is checked here:
// the name is resolved with the host on first use and the result cached,
// and a store the pipeline does not declare makes every call return an
// error wrapping abi.ErrNotFound.
func Store(name string) *KV { return &KV{name: name} }

// Name returns the store's name.
func (s *KV) Name() string { return s.name }

func (s *KV) handle() (int32, error) {
	if s.inst == instance {
		return s.h, s.err
	}
	c := storeOpen(strPtr(s.name), int32(len(s.name)))
	if c >= 0 {
		s.inst, s.h, s.err = instance, c, nil
		return c, nil
	}
	err := hostErr("store_open", s.name, c)
	if !abi.Code(c).Retryable() {
		s.inst, s.h, s.err = instance, -1, err
	}
	return -1, err
}

// valBuf receives values from kv_get; it grows to the largest value read.
var valBuf = make([]byte, 256)

// int64Buf holds the encoding PutInt64 writes.
var int64Buf [8]byte

// get reads key's value into valBuf and returns its length, or -1 when the
// key is absent.
func (s *KV) get(key []byte) (int, error) {
	h, err := s.handle()
	if err != nil {
		return 0, err
	}
	for {
		c := kvGet(h, ptr(key), int32(len(key)), &valBuf[0], int32(len(valBuf)))
		switch {
		case c == int32(abi.NotFound):
			return -1, nil
		case c < 0:
			return 0, hostErr("kv_get", s.name, c)
		case int(c) <= len(valBuf):
			return int(c), nil
		}
		// The value did not fit: the host returned its full length.
		valBuf = make([]byte, max(int(c), 2*len(valBuf)))
	}
}

// Get returns a copy of key's value; ok is false when the key is absent. A
// present but empty value is a non-nil empty slice.
func (s *KV) Get(key []byte) (value []byte, ok bool, err error) {
	n, err := s.get(key)
	if err != nil || n < 0 {
		return nil, false, err
	}
	value = make([]byte, n)
	copy(value, valBuf[:n])
	return value, true, nil
}

// AppendGet appends key's value to dst and returns the extended slice; ok
// is false (and dst returned unchanged) when the key is absent. With room in
// dst it does not allocate.
func (s *KV) AppendGet(dst, key []byte) (value []byte, ok bool, err error) {
	n, err := s.get(key)
	if err != nil || n < 0 {
		return dst, false, err
	}
	return append(dst, valBuf[:n]...), true, nil
}

// Put sets key to value. Reads see the write at once; it becomes durable
// when the host commits the batch. The host answers abi.ErrTooLarge for a
// key or value over its limit.
func (s *KV) Put(key, value []byte) error {
	h, err := s.handle()
	if err != nil {
		return err
	}
	if c := kvPut(h, ptr(key), int32(len(key)), ptr(value), int32(len(value))); c < 0 {
		return hostErr("kv_put", s.name, c)
	}
	return nil
}

// Delete removes key; deleting an absent key is not an error.
func (s *KV) Delete(key []byte) error {
	h, err := s.handle()
	if err != nil {
		return err
	}
	if c := kvDelete(h, ptr(key), int32(len(key))); c < 0 {
		return hostErr("kv_delete", s.name, c)
	}
	return nil
}

// GetInt64 returns key's value as an 8-byte big-endian int64, 0 when the
// key is absent, and an error wrapping [ErrNotInt64] for a value of another
// length. It does not allocate.
func (s *KV) GetInt64(key []byte) (int64, error) {
	h, err := s.handle()
	if err != nil {
		return 0, err
	}
	c := kvGet(h, ptr(key), int32(len(key)), &valBuf[0], int32(len(valBuf)))
	switch {
	case c == int32(abi.NotFound):
		return 0, nil
	case c < 0:
		return 0, hostErr("kv_get", s.name, c)
	case c != 8:
		return 0, &hostError{op: "kv_get", name: s.name, err: ErrNotInt64}
	}
	return int64(binary.BigEndian.Uint64(valBuf)), nil
}

// PutInt64 sets key to n as 8 big-endian bytes. It does not allocate.
func (s *KV) PutInt64(key []byte, n int64) error {
	binary.BigEndian.PutUint64(int64Buf[:], uint64(n))
	return s.Put(key, int64Buf[:])
}

// Int64Bytes returns n as 8 big-endian bytes, the encoding GetInt64 and
// PutInt64 use. Byte order matches numeric order for n >= 0.
func Int64Bytes(n int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(n))
	return b
}

// BytesInt64 decodes 8 big-endian bytes; any other length is [ErrNotInt64].
func BytesInt64(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, ErrNotInt64
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
