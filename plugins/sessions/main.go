// Command sessions is a flowstate processor that groups each user's events
// into sessions. An input record's key is the user id and its value the
// event name. Events are buffered per user in store "events"; when a user's
// event is "logout", or the user has 100 buffered events, the processor
// emits one record to topic "sessions" (key the user, value a summary such
// as "3 events: login,click,logout") and deletes that user's buffered
// events. It emits nothing else.
//
// Store "events" holds two kinds of keys:
//
//	<user> 0x00 <offset as 19 zero-padded decimal digits>  ->  event name
//	<user> 0x01                                             ->  buffered events (8-byte big-endian int64)
//
// so one user's events sort by offset and are exactly the keys with the
// prefix <user> 0x00. A user id containing a 0x00 byte would make that
// prefix ambiguous: such records, and records with a null key or value,
// are skipped with a warning. Offsets are unique within one input topic
// only, so give the pipeline one input.
//
// The pipeline declares:
//
//	inputs:  [events]
//	outputs: [sessions]
//	stores:  [events]
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bin/plugins/sessions.wasm ./plugins/sessions
package main

import (
	"bytes"
	"strconv"

	"github.com/flowstate/flowstate/sdk"
)

const (
	sessionsTopic = "sessions"
	logout        = "logout"
	// maxEvents is the number of buffered events that ends a session
	// without a logout.
	maxEvents = 100
	// offsetDigits is the width of the largest int64 in decimal.
	offsetDigits = 19
)

var events = sdk.Store("events")

func init() { sdk.OnRecord(process) }

// Scratch buffers, reused for every record.
var (
	eventKey []byte // <user> 0x00 <offset>
	countKey []byte // <user> 0x01
	summary  []byte
	keys     [][]byte // keys of the session being closed
)

func process(r sdk.Record, out sdk.Out) error {
	user := r.Key
	switch {
	case user == nil || r.Value == nil:
		sdk.Warn("sessions: skipping a record with a null key or value at offset " + strconv.FormatInt(r.Offset, 10))
		return nil
	case bytes.IndexByte(user, 0) >= 0:
		sdk.Warn("sessions: skipping a user id with a 0x00 byte at offset " + strconv.FormatInt(r.Offset, 10))
		return nil
	}

	eventKey = append(append(eventKey[:0], user...), 0)
	eventKey = appendPadded(eventKey, r.Offset, offsetDigits)
	if err := events.Put(eventKey, r.Value); err != nil {
		return err
	}
	countKey = append(append(countKey[:0], user...), 1)
	n, err := events.GetInt64(countKey)
	if err != nil {
		return err
	}
	n++
	if string(r.Value) != logout && n < maxEvents {
		return events.PutInt64(countKey, n)
	}
	return closeSession(user, out)
}

// closeSession emits the summary of user's buffered events and deletes
// them. It reads everything first and deletes after closing the iterator:
// the ABI does not say whether an open iterator sees later deletes.
func closeSession(user []byte, out sdk.Out) error {
	prefix := eventKey[:len(user)+1] // <user> 0x00
	summary = summary[:0]
	n := 0
	it := events.Prefix(prefix)
	for it.Next() {
		if n > 0 {
			summary = append(summary, ',')
		}
		summary = append(summary, it.Value()...)
		if n < len(keys) {
			keys[n] = append(keys[n][:0], it.Key()...)
		} else {
			keys = append(keys, append([]byte(nil), it.Key()...))
		}
		n++
	}
	it.Close()
	if err := it.Err(); err != nil {
		return err
	}

	value := strconv.AppendInt(make([]byte, 0, 16+len(summary)), int64(n), 10)
	if n == 1 {
		value = append(value, " event: "...)
	} else {
		value = append(value, " events: "...)
	}
	value = append(value, summary...)
	if err := out.Emit(sessionsTopic, user, value); err != nil {
		return err
	}
	for _, k := range keys[:n] {
		if err := events.Delete(k); err != nil {
			return err
		}
	}
	return events.Delete(countKey)
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(dst []byte, n int64, width int) []byte {
	var b [20]byte
	d := strconv.AppendInt(b[:0], n, 10)
	for range width - len(d) {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

func main() {}
