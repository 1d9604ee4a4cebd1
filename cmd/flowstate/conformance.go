package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/spf13/pflag"

	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/conformance/flowstatehost"
)

// conformanceFlags are the flags of `flowstate conformance`.
type conformanceFlags struct {
	guest *string
	run   *string
}

func newConformanceFlags() (*pflag.FlagSet, *conformanceFlags) {
	fs := pflag.NewFlagSet("conformance", pflag.ContinueOnError)
	return fs, &conformanceFlags{
		guest: fs.String("guest", "", "run the SDK cases against this `module`, an SDK's conformance processor (conformance/SPEC.md), instead of the host cases"),
		run:   fs.String("run", "", "run only the cases whose name matches this `regexp`"),
	}
}

// runConformance is `flowstate conformance`: the host cases of package
// conformance against this binary's host, or with --guest the SDK cases
// against a module. It prints a pass/fail table and fails when a case does.
func runConformance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newConformanceFlags()
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	var match *regexp.Regexp
	if *f.run != "" {
		var err error
		if match, err = regexp.Compile(*f.run); err != nil {
			return usageError{fmt.Errorf("--run: %w", err)}
		}
	}
	var cases []conformance.Case
	if *f.guest != "" {
		wasm, err := os.ReadFile(*f.guest)
		if err != nil {
			return fmt.Errorf("--guest: %w", err)
		}
		if cases, err = conformance.SDKSuite(wasm); err != nil {
			return err
		}
	} else {
		cases = conformance.HostSuite(nil)
	}
	if match != nil {
		var keep []conformance.Case
		for _, c := range cases {
			if match.MatchString(c.Name) {
				keep = append(keep, c)
			}
		}
		cases = keep
	}
	if len(cases) == 0 {
		return usageError{errors.New("no cases match --run")}
	}

	dir, err := os.MkdirTemp("", "flowstate-conformance-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	h, err := flowstatehost.New(ctx, dir)
	if err != nil {
		return err
	}
	defer h.Close(context.WithoutCancel(ctx))
	results := conformance.Run(ctx, h, cases)
	failed, err := conformance.WriteTable(stdout, results)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cases failed", failed, len(results))
	}
	return nil
}
