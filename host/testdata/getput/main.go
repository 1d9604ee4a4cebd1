// Command getput is a benchmark guest built with the Go SDK: for each record
// it reads the key's int64 count from store "counts" and writes it back plus
// one. Nothing else, so a benchmark measures the ABI and the store.
package main

import "github.com/flowstate/flowstate/sdk"

var counts = sdk.Store("counts")

func init() { sdk.OnRecord(count) }

func count(r sdk.Record, _ sdk.Out) error {
	n, err := counts.GetInt64(r.Key)
	if err != nil {
		return err
	}
	return counts.PutInt64(r.Key, n+1)
}

func main() {}
