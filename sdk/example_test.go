package sdk_test

import (
	"fmt"

	"github.com/flowstate/flowstate/sdk"
	"github.com/flowstate/flowstate/sdk/sdktest"
)

var seen = sdk.Store("seen")

// count is a processor: it counts records per key and emits each new count.
// A module registers it with sdk.OnRecord(count) in init.
func count(r sdk.Record, out sdk.Out) error {
	n, err := seen.GetInt64(r.Key) // 0 when absent
	if err != nil {
		return err
	}
	if err := seen.PutInt64(r.Key, n+1); err != nil {
		return err
	}
	return out.Emit("counts", r.Key, sdk.Int64Bytes(n+1))
}

func Example() {
	// Natively, sdktest plays the host; Handler stands in for the OnRecord
	// call a module makes in init.
	h := sdktest.New(sdktest.Config{Stores: []string{"seen"}, Topics: []string{"counts"}, Handler: count})
	defer h.Close()

	for _, key := range []string{"a", "b", "a"} {
		if err := h.Feed("clicks", key, ""); err != nil {
			fmt.Println(err)
		}
	}
	for _, e := range h.Emits() {
		n, _ := sdk.BytesInt64(e.Value)
		fmt.Printf("%s %s=%d\n", e.Topic, e.Key, n)
	}
	n, _ := h.Int64("seen", "a")
	fmt.Println("seen[a] =", n)
	// Output:
	// counts a=1
	// counts b=1
	// counts a=2
	// seen[a] = 2
}

func ExampleKV_Prefix() {
	events := sdk.Store("events")
	h := sdktest.New(sdktest.Config{Stores: []string{"events"}, Handler: func(r sdk.Record, out sdk.Out) error {
		it := events.Prefix([]byte("user1/"))
		defer it.Close()
		for it.Next() {
			fmt.Printf("%s=%s\n", it.Key(), it.Value())
		}
		return it.Err()
	}})
	defer h.Close()
	h.Put("events", "user1/1", []byte("login"))
	h.Put("events", "user1/2", []byte("click"))
	h.Put("events", "user2/1", []byte("login"))
	if err := h.Feed("in", "", ""); err != nil {
		fmt.Println(err)
	}
	// Output:
	// user1/1=login
	// user1/2=click
}
