// Command sums is the crash suite's guest: it adds each record's value (a
// decimal integer) to the running sum of its key in store "sums" and emits
// "<partition>:<offset>:<sum>" to topic "out", so that a reader can tell
// which input produced each output and find lost or duplicated effects.
package main

import (
	"strconv"

	"github.com/flowstate/flowstate/sdk"
)

var sums = sdk.Store("sums")

func init() { sdk.OnRecord(add) }

var buf []byte

func add(r sdk.Record, out sdk.Out) error {
	v, err := strconv.ParseInt(string(r.Value), 10, 64)
	if err != nil {
		return err
	}
	s, err := sums.GetInt64(r.Key)
	if err != nil {
		return err
	}
	s += v
	if err := sums.PutInt64(r.Key, s); err != nil {
		return err
	}
	buf = strconv.AppendInt(buf[:0], int64(r.Partition), 10)
	buf = append(buf, ':')
	buf = strconv.AppendInt(buf, r.Offset, 10)
	buf = append(buf, ':')
	buf = strconv.AppendInt(buf, s, 10)
	return out.Emit("out", r.Key, buf)
}

func main() {}
