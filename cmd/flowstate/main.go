// Command flowstate runs stream-processing pipelines of WebAssembly modules
// against Kafka, or against an embedded broker for development.
//
//	flowstate run -c app.yaml        run against the configured brokers
//	flowstate dev -c app.yaml        run against an embedded broker (kfake)
//	flowstate broker --port 9092     the embedded broker alone
//	flowstate conformance            the conformance suite (--guest FILE.wasm for an SDK)
//	flowstate status --addr h:p      the tasks of running processes
//	flowstate version
//
// Configuration is a YAML file (-c), overridden by FLOWSTATE_ environment
// variables (FLOWSTATE_COMMIT_INTERVAL=2s; a double underscore nests:
// FLOWSTATE_ROCKSDB__BLOCK_CACHE_MB=128,
// FLOWSTATE_PIPELINES__WORDCOUNT__MODULE=x.wasm), overridden by flags
// (--brokers, --state-dir, --log-level). Module paths are relative to the
// current directory, not to the config file. Unknown keys are errors.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/crashpoint"
)

// version is the release version, set with -ldflags "-X main.version=v1.2.3".
var version = "devel"

const usage = `flowstate runs stream-processing pipelines of WebAssembly modules on Kafka.

Usage:
  flowstate <command> [flags]

Commands:
  run      run the pipelines of a config against its brokers, until SIGINT/SIGTERM
  dev      run them against an embedded broker kept under <state_dir>/broker;
           --feed TOPIC=FILE produces lines, --print TOPIC shows the latest values,
           --exit-when-done stops once every input record is processed
  broker   run the embedded broker alone
  bench    benchmarks: flowstate bench process|restore|stores
  status   the tasks of running processes, from their http_addr:
           flowstate status --addr host:port[,host:port...]
  conformance
           the host conformance suite; --guest FILE.wasm checks an SDK's
           conformance processor instead (conformance/SPEC.md)
  version  print the version
  help     print this help, or a command's flags: flowstate help dev

Configuration: a YAML file (-c FILE), overridden by FLOWSTATE_ environment
variables (FLOWSTATE_COMMIT_INTERVAL=2s, FLOWSTATE_ROCKSDB__BLOCK_CACHE_MB=128:
a double underscore separates nested keys), overridden by flags. Module paths
are relative to the current directory. See examples/wordcount.yaml.
`

// commands maps each subcommand to its function and its flags, for help.
var commands = map[string]struct {
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	flags func() *pflag.FlagSet
}{
	"run":         {runRun, func() *pflag.FlagSet { fs, _ := newRunFlags(); return fs }},
	"dev":         {runDev, func() *pflag.FlagSet { fs, _ := newDevFlags(); return fs }},
	"broker":      {runBroker, func() *pflag.FlagSet { fs, _ := newBrokerFlags(); return fs }},
	"bench":       {runBench, newBenchFlags},
	"conformance": {runConformance, func() *pflag.FlagSet { fs, _ := newConformanceFlags(); return fs }},
	"status":      {runStatus, func() *pflag.FlagSet { fs, _ := newStatusFlags(); return fs }},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a clean stop, a second one kills.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code: 0, 1 for an
// error, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "--help":
		return help(args, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "flowstate: unknown command %q\n\n%s", name, usage)
		return 2
	}
	err := cmd.run(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	}
	// Multi-line errors (one line per config key) are indented under the
	// first line.
	fmt.Fprintf(stderr, "flowstate %s: %s\n", name, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	if _, ok := errors.AsType[usageError](err); ok {
		return 2
	}
	return 1
}

func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "flowstate help: unknown command %q\n", args[0])
		return 2
	}
	fs := cmd.flags()
	fmt.Fprintf(stdout, "Usage of flowstate %s:\n%s", args[0], fs.FlagUsages())
	return 0
}

// usageError is a bad command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// parseFlags parses args into fs, refusing positional arguments. Errors are
// usageErrors; -h gives pflag.ErrHelp after printing the flags.
func parseFlags(fs *pflag.FlagSet, args []string, stderr io.Writer) error {
	// Parse errors are not printed here: run prints them with the command
	// name. pflag calls Usage for -h.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of flowstate %s:\n%s", fs.Name(), fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// newLogger returns the text logger of the process, writing to w.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func versionString() string {
	s := "flowstate " + version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return s
	}
	s += " " + bi.GoVersion
	var rev, modified string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			modified = kv.Value
		}
	}
	if rev != "" {
		s += " " + rev[:min(12, len(rev))]
		if modified == "true" {
			s += "+dirty"
		}
	}
	return s
}

// runFlags are the flags of `flowstate run`.
type runFlags struct {
	config     *string
	crashPoint *string
}

func newRunFlags() (*pflag.FlagSet, *runFlags) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	return fs, &runFlags{config: addConfigFlags(fs), crashPoint: addCrashPointFlag(fs)}
}

// addCrashPointFlag adds the hidden, test-only --crash-point flag: the
// process SIGKILLs itself at a named point of the commit path or the
// restore (internal/crashpoint), for the crash suite. It is not a config
// key.
func addCrashPointFlag(fs *pflag.FlagSet) *string {
	spec := fs.String("crash-point", "", "test only: SIGKILL the process at `NAME[@N]`, the Nth time point NAME is reached")
	_ = fs.MarkHidden("crash-point")
	return spec
}

// runRun is `flowstate run`: the engine against the configured brokers
// until ctx is done (SIGINT or SIGTERM), then a clean stop.
func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newRunFlags()
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	cfg, err := loadConfig(*f.config, fs, false)
	if err != nil {
		return err
	}
	if cfg.Engine.CrashPoints, err = crashpoint.Parse(*f.crashPoint, stderr); err != nil {
		return usageError{fmt.Errorf("--crash-point: %w", err)}
	}
	w, log := newWatch(cfg, stdout, stderr)
	cfg.Engine.Logger = log
	e, err := engine.New(cfg.Engine)
	if err == nil {
		err = w.start(e, log)
	}
	if err != nil {
		return errors.Join(err, w.stop())
	}
	log.Info("flowstate starting", "version", version, "brokers", cfg.Engine.Brokers, "state_dir", cfg.Engine.StateDir)
	err = e.Run(ctx)
	return errors.Join(err, w.stop())
}
