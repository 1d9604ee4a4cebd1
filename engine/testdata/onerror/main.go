// Command onerror is a test guest for the error policies. For each record
// it writes the record's value under "off/<offset>" in store "seen", counts
// the record's key there, and emits "<offset>:<count>" to topic "out".
// Records with a poison value do the write and the emit first, then fail
// their batch: "poison" returns an error, "panic" panics (the SDK turns it
// into an error), "exit" exits the module (like a trap, the instance is
// replaced), "loop" never returns (stopped at call_timeout), and "huge"
// emits a value over max_value_bytes (refused by the host). "bigput" and
// "bigemit" write and emit a value of 1,040,000 bytes, "bigdelete" deletes a
// key of 70,000 bytes: under the default limits and topics the host
// refuses them, where a commit would fail.
package main

import (
	"errors"
	"os"
	"strconv"

	"github.com/flowstate/flowstate/sdk"
)

var seen = sdk.Store("seen")

func init() { sdk.OnRecord(process) }

func process(r sdk.Record, out sdk.Out) error {
	off := strconv.FormatInt(r.Offset, 10)
	if err := seen.Put([]byte("off/"+off), r.Value); err != nil {
		return err
	}
	switch string(r.Value) {
	case "poison", "panic", "exit", "loop", "huge":
		if err := out.Emit("out", r.Key, []byte(off+":poison")); err != nil {
			return err
		}
	}
	switch string(r.Value) {
	case "poison":
		return errors.New("poison record at offset " + off)
	case "panic":
		panic("panic at offset " + off)
	case "exit":
		os.Exit(3)
	case "loop":
		for {
		}
	case "huge":
		return out.Emit("out", r.Key, make([]byte, 4096))
	case "bigput":
		return seen.Put([]byte("big"), make([]byte, 1_040_000))
	case "bigemit":
		return out.Emit("out", r.Key, make([]byte, 1_040_000))
	case "bigdelete":
		return seen.Delete(make([]byte, 70_000))
	}
	n, err := seen.GetInt64(r.Key)
	if err != nil {
		return err
	}
	if err := seen.PutInt64(r.Key, n+1); err != nil {
		return err
	}
	return out.Emit("out", r.Key, []byte(off+":"+strconv.FormatInt(n+1, 10)))
}

func main() {}
