//go:build !wasip1

package sdk

import (
	"unsafe"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/sdk/internal/stubhost"
)

// The imports of abi.go, implemented natively by an in-memory host
// (internal/stubhost) so that processors run under go test; package
// sdktest drives it. The signatures match abi.go, so the SDK code above
// them, pointer and length handling included, is the code a module runs.
//
// Natively the SDK registers its exports with the stub host here. This is
// the only init in the SDK.

func init() {
	stubhost.Bind(stubhost.Guest{
		Alloc:      allocBatch,
		Process:    func(n uint32) int32 { return processAt(0, n) },
		Reset:      resetInstance,
		SetHandler: setOverride,
	})
}

// resetInstance forgets the handles of the previous stub host, as a fresh
// module instance would.
func resetInstance() {
	instance++
	topics, lastTopic, lastEntry = nil, "", topicEntry{}
}

func setOverride(fn any) (restore func()) {
	prev := override
	if fn == nil {
		override = nil
	} else {
		override = fn.(func(Record, Out) error)
	}
	return func() { override = prev }
}

// mem turns a (pointer, length) pair into a slice as the host's memory
// check would: ok is false for a negative length or a nil pointer with a
// non-zero length (BAD_POINTER). A zero length gives a non-nil empty slice.
func mem(p *byte, n int32) ([]byte, bool) {
	switch {
	case n < 0, p == nil && n > 0:
		return nil, false
	case n == 0:
		return []byte{}, true
	}
	return unsafe.Slice(p, n), true
}

// nullable is mem with a length of -1 meaning null (a nil slice).
func nullable(p *byte, n int32) ([]byte, bool) {
	if n == -1 {
		return nil, true
	}
	return mem(p, n)
}

const badPointer = int32(abi.BadPointer)

func storeOpen(name *byte, nameLen int32) int32 {
	b, ok := mem(name, nameLen)
	if !ok {
		return badPointer
	}
	return stubhost.StoreOpen(b)
}

func topicOpen(name *byte, nameLen int32) int32 {
	b, ok := mem(name, nameLen)
	if !ok {
		return badPointer
	}
	return stubhost.TopicOpen(b)
}

func kvGet(store int32, key *byte, keyLen int32, buf *byte, bufCap int32) int32 {
	k, ok1 := mem(key, keyLen)
	b, ok2 := mem(buf, bufCap)
	if !ok1 || !ok2 {
		return badPointer
	}
	return stubhost.KVGet(store, k, b)
}

func kvPut(store int32, key *byte, keyLen int32, val *byte, valLen int32) int32 {
	k, ok1 := mem(key, keyLen)
	v, ok2 := mem(val, valLen)
	if !ok1 || !ok2 {
		return badPointer
	}
	return stubhost.KVPut(store, k, v)
}

func kvDelete(store int32, key *byte, keyLen int32) int32 {
	k, ok := mem(key, keyLen)
	if !ok {
		return badPointer
	}
	return stubhost.KVDelete(store, k)
}

func kvRange(store int32, start *byte, startLen int32, end *byte, endLen int32) int32 {
	s, ok1 := mem(start, startLen)
	e, ok2 := mem(end, endLen)
	if !ok1 || !ok2 {
		return badPointer
	}
	return stubhost.KVRange(store, s, e)
}

func iterNext(iter int32, buf *byte, bufCap int32) int32 {
	b, ok := mem(buf, bufCap)
	if !ok {
		return badPointer
	}
	return stubhost.IterNext(iter, b)
}

func iterClose(iter int32) int32 { return stubhost.IterClose(iter) }

func emit(topic int32, key *byte, keyLen int32, val *byte, valLen int32, hdr *byte, hdrLen int32) int32 {
	k, ok1 := nullable(key, keyLen)
	v, ok2 := nullable(val, valLen)
	h, ok3 := mem(hdr, hdrLen)
	if !ok1 || !ok2 || !ok3 {
		return badPointer
	}
	return stubhost.Emit(topic, k, v, h)
}

func hostLog(level int32, msg *byte, msgLen int32) int32 {
	b, ok := mem(msg, msgLen)
	if !ok {
		return badPointer
	}
	return stubhost.LogMsg(level, b)
}

func hostFail(msg *byte, msgLen int32) int32 {
	b, ok := mem(msg, msgLen)
	if !ok {
		return badPointer
	}
	return stubhost.Fail(b)
}
