package abi

import (
	"encoding/binary"
	"errors"
)

// ErrMalformed is returned by the decoders for an encoding that is truncated
// or has a length past its end.
var ErrMalformed = errors.New("abi: malformed encoding")

// Record is one input record of a batch. Decoded slices alias the batch
// buffer: they are valid until the buffer is reused.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp int64 // milliseconds since the Unix epoch
	Key       []byte
	Value     []byte // nil for a null value
	Headers   []Header
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// AppendBatch appends the batch encoding of recs to dst.
func AppendBatch(dst []byte, recs []Record) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(recs)))
	for i := range recs {
		dst = AppendRecord(dst, &recs[i])
	}
	return dst
}

// BatchSize returns the length of the batch encoding of recs.
func BatchSize(recs []Record) int {
	n := 4
	for i := range recs {
		n += RecordSize(&recs[i])
	}
	return n
}

// RecordSize returns the length of the record encoding of r.
func RecordSize(r *Record) int {
	n := 4 + len(r.Topic) + 4 + 8 + 8 + 4 + len(r.Key) + 4 + len(r.Value) + 4
	for _, h := range r.Headers {
		n += 4 + len(h.Key) + 4 + len(h.Value)
	}
	return n
}

// AppendRecord appends one record's encoding to dst. A batch is a u32 count
// followed by that many records.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = appendBytes(dst, []byte(r.Topic))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(r.Partition))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Offset))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Timestamp))
	dst = appendNullable(dst, r.Key)
	dst = appendNullable(dst, r.Value)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Headers)))
	for _, h := range r.Headers {
		dst = appendBytes(dst, []byte(h.Key))
		dst = appendNullable(dst, h.Value)
	}
	return dst
}

// BatchReader decodes a batch without copying: the slices of each record
// alias the buffer. The zero value is an empty batch.
type BatchReader struct {
	buf   []byte
	left  uint32
	topic string // the last topic decoded, reused to avoid an allocation per record
}

// NewBatchReader reads the count at the head of b.
func NewBatchReader(b []byte) (BatchReader, error) {
	if len(b) < 4 {
		return BatchReader{}, ErrMalformed
	}
	return BatchReader{buf: b[4:], left: binary.LittleEndian.Uint32(b)}, nil
}

// Len returns the number of records not yet read.
func (r *BatchReader) Len() int { return int(r.left) }

// Next decodes the next record into rec, reusing rec.Headers' backing array.
// It returns false with a nil error at the end of the batch, and
// ErrMalformed for a truncated encoding or bytes left after the last record.
func (r *BatchReader) Next(rec *Record) (bool, error) {
	if r.left == 0 {
		if len(r.buf) != 0 {
			return false, ErrMalformed
		}
		return false, nil
	}
	d := decoder{b: r.buf}
	topic := d.bytes()
	if string(topic) != r.topic {
		r.topic = string(topic)
	}
	rec.Topic = r.topic
	rec.Partition = int32(d.u32())
	rec.Offset = int64(d.u64())
	rec.Timestamp = int64(d.u64())
	rec.Key = d.nullable()
	rec.Value = d.nullable()
	n := d.u32()
	if d.bad || uint64(n)*8 > uint64(len(d.b)) {
		return false, ErrMalformed
	}
	rec.Headers = rec.Headers[:0]
	for range n {
		k := d.bytes()
		v := d.nullable()
		rec.Headers = append(rec.Headers, Header{Key: string(k), Value: v})
	}
	if d.bad {
		return false, ErrMalformed
	}
	r.buf = d.b
	r.left--
	return true, nil
}

// AppendEntry appends one iterator entry (key, value) to dst.
func AppendEntry(dst, key, value []byte) []byte {
	dst = appendBytes(dst, key)
	return appendBytes(dst, value)
}

// EntrySize returns the length of the entry encoding of key and value.
func EntrySize(key, value []byte) int { return 8 + len(key) + len(value) }

// NextEntry decodes the entry at the head of b and returns the rest of b.
func NextEntry(b []byte) (key, value, rest []byte, err error) {
	d := decoder{b: b}
	key = d.bytes()
	value = d.bytes()
	if d.bad {
		return nil, nil, nil, ErrMalformed
	}
	return key, value, d.b, nil
}

// AppendHeaders appends the headers encoding of hs to dst.
func AppendHeaders(dst []byte, hs []Header) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(hs)))
	for _, h := range hs {
		dst = appendBytes(dst, []byte(h.Key))
		dst = appendNullable(dst, h.Value)
	}
	return dst
}

// DecodeHeaders decodes a headers encoding. Values alias b; keys are copied.
func DecodeHeaders(b []byte) ([]Header, error) {
	d := decoder{b: b}
	n := d.u32()
	if d.bad || uint64(n)*8 > uint64(len(d.b)) {
		return nil, ErrMalformed
	}
	hs := make([]Header, 0, n)
	for range n {
		k := d.bytes()
		v := d.nullable()
		hs = append(hs, Header{Key: string(k), Value: v})
	}
	if d.bad || len(d.b) != 0 {
		return nil, ErrMalformed
	}
	return hs, nil
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.LittleEndian.AppendUint32(dst, Null)
	}
	return appendBytes(dst, b)
}

// decoder reads fixed-width little-endian fields; after the first short read
// every read returns zero values and bad is set.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) u32() uint32 {
	if d.bad || len(d.b) < 4 {
		d.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.bad || len(d.b) < 8 {
		d.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.u32()
	if d.bad || uint64(n) > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) nullable() []byte {
	if !d.bad && len(d.b) >= 4 && binary.LittleEndian.Uint32(d.b) == Null {
		d.b = d.b[4:]
		return nil
	}
	return d.bytes()
}
