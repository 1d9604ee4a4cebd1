package sdk

import (
	"errors"
	"strconv"
	"unsafe"

	"github.com/flowstate/flowstate/abi"
)

// Record is one input record. Key is nil for a null key and Value is nil for
// a null value (a tombstone); Topic is the input topic's name. Its slices,
// Headers included, alias the batch the host passed in: they are valid until
// the handler returns, so copy what you keep.
type Record = abi.Record

// Header is a record header. A nil Value is a null header value.
type Header = abi.Header

// ErrNotInt64 is returned by [BytesInt64] and [KV.GetInt64] for a value that
// is not 8 bytes long.
var ErrNotInt64 = errors.New("sdk: value is not an 8-byte int64")

var (
	// handler is the function given to OnRecord; registrations counts the
	// calls, so that a second registration fails every batch instead of
	// silently replacing the first.
	handler       func(Record, Out) error
	registrations int

	// override replaces handler in native tests (see sdktest.Config.Handler);
	// it is always nil in a module.
	override func(Record, Out) error

	// batchSeq numbers flowstate_process calls, so that an Out or an
	// Iterator kept past its batch is detected instead of reaching a handle
	// the host has closed or given to someone else. 0 is never a batch.
	batchSeq uint32
	inBatch  bool

	// rec is decoded into for every record, so the Headers backing array is
	// reused across records and batches.
	rec Record

	// batchBuf is the buffer flowstate_alloc hands out; the host writes each
	// batch into it. It is only replaced by a larger one.
	batchBuf []byte
)

// minBatchBuf is the smallest batch buffer, allocated on the first
// flowstate_alloc call.
const minBatchBuf = 64 << 10

// OnRecord registers fn as the processor's handler. Call it once, from init:
// a reactor module never runs main. fn is called once per input record, in
// offset order; the first error it returns (or a panic) fails the batch.
//
// Calling OnRecord more than once, or with nil, does not panic: every batch
// then fails with a message saying so.
func OnRecord(fn func(Record, Out) error) {
	handler = fn
	registrations++
}

// Out emits records to the pipeline's output topics. The Out passed to a
// handler is valid during that call only.
type Out struct {
	seq uint32 // the batch it was made for
}

var errOutStale = errors.New("sdk: Out used outside the handler call it was passed to")

// Emit queues one output record to topic with no headers. A nil key or
// value is sent as null (a nil value is a tombstone); an empty non-nil slice
// is sent as empty. key and value are read during the call only.
func (o Out) Emit(topic string, key, value []byte) error {
	return o.EmitRecord(topic, key, value, nil)
}

// EmitRecord is Emit with headers. The topic must be one the pipeline
// declares as output; its handle is resolved on first use and cached. It
// returns an error wrapping abi.ErrNotFound for an undeclared topic,
// abi.ErrLimitExceeded when the batch's output is over the host's limit and
// abi.ErrTooLarge for an oversized record.
func (o Out) EmitRecord(topic string, key, value []byte, headers []Header) error {
	if o.seq == 0 || o.seq != batchSeq || !inBatch {
		return errOutStale
	}
	t, err := topicHandle(topic)
	if err != nil {
		return err
	}
	var hdr []byte
	if len(headers) > 0 {
		hdrBuf = abi.AppendHeaders(hdrBuf[:0], headers)
		hdr = hdrBuf
	}
	c := emit(t, ptr(key), nullableLen(key), ptr(value), nullableLen(value), ptr(hdr), int32(len(hdr)))
	if c < 0 {
		return hostErr("emit", topic, c)
	}
	return nil
}

// hdrBuf holds the headers encoding of the last EmitRecord with headers.
var hdrBuf []byte

type topicEntry struct {
	handle int32
	err    error
}

var (
	topics    map[string]topicEntry
	lastTopic string // the last topic resolved, checked before the map
	lastEntry topicEntry
)

func topicHandle(name string) (int32, error) {
	if name == lastTopic && topics != nil {
		return lastEntry.handle, lastEntry.err
	}
	e, ok := topics[name]
	if !ok {
		c := topicOpen(strPtr(name), int32(len(name)))
		if c >= 0 {
			e = topicEntry{handle: c}
		} else {
			e = topicEntry{handle: -1, err: hostErr("topic_open", name, c)}
			if abi.Code(c).Retryable() {
				return -1, e.err // a transient host failure is not cached
			}
		}
		if topics == nil {
			topics = make(map[string]topicEntry)
		}
		topics[name] = e
	}
	lastTopic, lastEntry = name, e
	return e.handle, e.err
}

// Debug sends msg to the host's log at debug level. The host may drop or
// truncate messages; nothing is returned.
func Debug(msg string) { logMsg(abi.LevelDebug, msg) }

// Info sends msg to the host's log at info level.
func Info(msg string) { logMsg(abi.LevelInfo, msg) }

// Warn sends msg to the host's log at warn level.
func Warn(msg string) { logMsg(abi.LevelWarn, msg) }

// Error sends msg to the host's log at error level. It does not fail the
// batch: return an error from the handler for that.
func Error(msg string) { logMsg(abi.LevelError, msg) }

func logMsg(level int32, msg string) {
	hostLog(level, strPtr(msg), int32(len(msg)))
}

// allocBatch returns the batch buffer, grown to at least size bytes, or nil
// for a size that cannot be a batch. The host writes into it, then calls
// flowstate_process.
func allocBatch(size uint32) []byte {
	if size > 1<<31-1 {
		return nil
	}
	if batchBuf == nil || int(size) > len(batchBuf) {
		n := max(int(size), minBatchBuf, len(batchBuf)+len(batchBuf)/2)
		batchBuf = nil // lets a collection during make reclaim the old buffer
		batchBuf = make([]byte, n)
	}
	return batchBuf
}

// processAt processes the n bytes at offset off of the batch buffer.
func processAt(off, n uint32) int32 {
	if uint64(off)+uint64(n) > uint64(len(batchBuf)) {
		return fail("sdk: batch lies outside the buffer flowstate_alloc returned")
	}
	return processBatch(batchBuf[off : off+n])
}

// processBatch decodes the batch in b and calls the handler per record. It
// returns 0, or 1 after reporting the first error through the fail import.
func processBatch(b []byte) (status int32) {
	batchSeq++
	if batchSeq == 0 {
		batchSeq = 1
	}
	inBatch = true
	started := false
	defer func() {
		inBatch = false
		if p := recover(); p != nil {
			msg := "sdk: handler panicked: " + panicText(p)
			if started {
				msg = where(&rec) + msg
			}
			status = fail(msg)
		}
	}()
	fn := handler
	switch {
	case override != nil:
		fn = override
	case registrations == 0 || fn == nil:
		return fail("sdk: no handler: call sdk.OnRecord with a function in init")
	case registrations > 1:
		return fail("sdk: sdk.OnRecord was called " + strconv.Itoa(registrations) + " times; call it once")
	}
	r, err := abi.NewBatchReader(b)
	if err != nil {
		return fail("sdk: decode batch: " + err.Error())
	}
	for {
		ok, err := r.Next(&rec)
		if err != nil {
			return fail("sdk: decode batch: " + err.Error())
		}
		if !ok {
			return 0
		}
		started = true
		if err := fn(rec, Out{seq: batchSeq}); err != nil {
			return fail(where(&rec) + err.Error())
		}
	}
}

// where names a record for a failure message: "topic/partition@offset: ".
func where(r *Record) string {
	b := make([]byte, 0, len(r.Topic)+32)
	b = append(b, r.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, '@')
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, ": "...)
	return string(b)
}

func panicText(p any) string {
	switch v := p.(type) {
	case error:
		return v.Error()
	case string:
		return v
	case interface{ String() string }:
		return v.String()
	case int:
		return strconv.Itoa(v)
	}
	return "a value of a type the sdk cannot print"
}

// fail reports msg to the host and returns the status that fails a batch.
func fail(msg string) int32 {
	hostFail(strPtr(msg), int32(len(msg)))
	return 1
}

// hostError is an error code returned by a host function, with the
// operation and the store or topic it concerned.
type hostError struct {
	op   string // the import, such as "kv_put"
	name string // the store or topic
	msg  string // replaces err's text when set
	err  error
}

func hostErr(op, name string, c int32) error {
	return &hostError{op: op, name: name, err: abi.Code(c).Err()}
}

func (e *hostError) Error() string {
	s := "sdk: " + e.op
	if e.name != "" {
		s += " " + e.name
	}
	if e.msg != "" {
		return s + ": " + e.msg
	}
	return s + ": " + e.err.Error()
}

func (e *hostError) Unwrap() error { return e.err }

// ptr returns the address of b's first byte, or nil for an empty b: the
// host gets (0, 0) rather than a pointer that may lie just past the end of
// an allocation.
func ptr(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

func strPtr(s string) *byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.StringData(s)
}

// nullableLen is len(b), or -1 (abi.Null) for a nil b.
func nullableLen(b []byte) int32 {
	if b == nil {
		return -1
	}
	return int32(len(b))
}
