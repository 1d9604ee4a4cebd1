package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// benchCommands are the subcommands of `flowstate bench`.
var benchCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"process": runBenchProcess,
	"restore": runBenchRestore,
	"stores":  runBenchStores,
}

const benchUsage = `Usage: flowstate bench <benchmark> [flags]

Benchmarks:
  process   records/s through a count-by-key processor, per guarantee
  restore   records/s restoring fresh stores from a changelog (--restart: and a restarted one)
  stores    the process RSS with --stores task databases under one memory budget

Run flowstate bench <benchmark> --help for its flags.
`

// runBench runs one benchmark of `flowstate bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, benchUsage)
		return nil
	}
	run, ok := benchCommands[args[0]]
	if !ok {
		names := make([]string, 0, len(benchCommands))
		for n := range benchCommands {
			names = append(names, n)
		}
		slices.Sort(names)
		return usageError{fmt.Errorf("unknown benchmark %q (one of: %s)", args[0], strings.Join(names, ", "))}
	}
	return run(ctx, args[1:], stdout, stderr)
}

func newBenchFlags() *pflag.FlagSet {
	fs, _ := newBenchProcessFlags()
	return fs
}
