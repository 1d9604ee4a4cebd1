// Command counter is the processor of the README: it counts the records of
// each key in store "counts" (8-byte big-endian int64) and emits the new
// count to topic "counts-out", as 8 big-endian bytes.
//
// The pipeline declares:
//
//	outputs: [counts-out]
//	stores:  [counts]
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bin/plugins/counter.wasm ./plugins/counter
package main

import "github.com/flowstate/flowstate/sdk"

var counts = sdk.Store("counts")

func init() { sdk.OnRecord(count) }

func count(r sdk.Record, out sdk.Out) error {
	n, err := counts.GetInt64(r.Key) // 0 when absent
	if err != nil {
		return err
	}
	if err := counts.PutInt64(r.Key, n+1); err != nil {
		return err
	}
	return out.Emit("counts-out", r.Key, sdk.Int64Bytes(n+1))
}

func main() {}
