// Command poison is a test guest: it counts records per key in store "seen",
// emits each new count to topic "out", and fails the batch of any record
// whose value is "poison" (a guest error) or "exit" (the module exits, which
// kills the instance like a trap).
package main

import (
	"errors"
	"os"
	"strconv"

	"github.com/flowstate/flowstate/sdk"
)

var seen = sdk.Store("seen")

func init() { sdk.OnRecord(count) }

func count(r sdk.Record, out sdk.Out) error {
	switch string(r.Value) {
	case "poison":
		return errors.New("poison record at offset " + strconv.FormatInt(r.Offset, 10))
	case "exit":
		os.Exit(3)
	}
	n, err := seen.GetInt64(r.Key)
	if err != nil {
		return err
	}
	if err := seen.PutInt64(r.Key, n+1); err != nil {
		return err
	}
	return out.Emit("out", r.Key, []byte(strconv.FormatInt(n+1, 10)))
}

func main() {}
