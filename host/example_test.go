package host_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/state"
)

// Example runs the counter guest (conformance/testdata/counter.wat), which
// counts keys in store "counts" and emits each new count to topic "out",
// over one batch.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "flowstate-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	wasm, err := conformance.EmbeddedModule("counter")
	if err != nil {
		panic(err)
	}

	rt, err := host.NewRuntime(ctx, host.RuntimeConfig{CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Compile(ctx, "counter", wasm, host.Limits{MemoryMB: 16})
	if err != nil {
		panic(err)
	}
	db, err := state.Open(state.Config{Dir: filepath.Join(dir, "task"), Stores: []string{"counts"}})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	inst, err := m.Instantiate(ctx, host.InstanceConfig{DB: db, Stores: []string{"counts"}, Topics: []string{"out"}})
	if err != nil {
		panic(err)
	}
	defer inst.Close(ctx)

	recs := []abi.Record{
		{Topic: "in", Key: []byte("apple"), Value: []byte("1")},
		{Topic: "in", Key: []byte("pear"), Value: []byte("1")},
		{Topic: "in", Key: []byte("apple"), Value: []byte("1")},
	}
	out, err := inst.Process(ctx, recs, nil)
	if err != nil {
		panic(err)
	}
	for _, o := range out[:len(recs)] { // the last output is the guest's range dump
		fmt.Printf("%s %s=%d\n", o.Topic, o.Key, binary.LittleEndian.Uint64(o.Value))
	}
	// Output:
	// out apple=1
	// out pear=1
	// out apple=2
}
