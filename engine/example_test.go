package engine_test

import (
	"errors"
	"fmt"

	"github.com/flowstate/flowstate/engine"
)

// Validate names every bad field by its full config key.
func ExampleFieldErrors() {
	cfg := engine.Config{
		ApplicationID:      "app",
		Brokers:            []string{"localhost:9092"},
		NumStandbyReplicas: -1,
		Pipelines:          []engine.Pipeline{{Name: "count", Module: "count.wasm", Inputs: []string{"in"}, MaxBatchRecords: -5}},
	}
	cfg.EnsureDefaults()
	err := cfg.Validate()
	for _, fe := range engine.FieldErrors(err) {
		fmt.Printf("%s: %s\n", fe.Key, fe.Msg)
	}
	var first *engine.FieldError
	fmt.Println(errors.As(err, &first), first.Key)
	// Output:
	// num_standby_replicas: -1 is negative
	// pipelines.count.max_batch_records: -5 is negative
	// true num_standby_replicas
}
