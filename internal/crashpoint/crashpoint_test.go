package crashpoint_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/flowstate/flowstate/internal/crashpoint"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		nilSet     bool
		err        string
	}{
		{name: "empty", spec: "", nilSet: true},
		{name: "blank", spec: "  ", nilSet: true},
		{name: "name", spec: "commit.produced"},
		{name: "count", spec: "commit.ended@3"},
		{name: "list", spec: "commit.stored@2, restore.sst-chunk"},
		{name: "unknown", spec: "commit.typo", err: `crash point "commit.typo": unknown`},
		{name: "zero", spec: "commit.produced@0", err: "want NAME@N with N at least 1"},
		{name: "not a number", spec: "commit.produced@x", err: "want NAME@N with N at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := crashpoint.Parse(tc.spec, os.Stderr)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%q) = %v, want an error with %q", tc.spec, err, tc.err)
				}
			case err != nil:
				t.Fatalf("Parse(%q): %v", tc.spec, err)
			case tc.nilSet != (s == nil):
				t.Fatalf("Parse(%q) = %v, want nil %v", tc.spec, s, tc.nilSet)
			}
		})
	}
}

func TestHitDisarmed(t *testing.T) {
	var s *crashpoint.Set
	s.Hit(crashpoint.CommitProduced) // nil: nothing happens

	var out bytes.Buffer
	s, err := crashpoint.Parse("commit.ended@1000", &out)
	if err != nil {
		t.Fatal(err)
	}
	for range 999 {
		s.Hit(crashpoint.CommitEnded)
		s.Hit(crashpoint.CommitProduced) // not armed
	}
	if out.Len() > 0 {
		t.Fatalf("a point below its count wrote %q", out.String())
	}
}

// crashChild, when set, makes TestHitKills the process that dies.
const crashChild = "CRASHPOINT_TEST_CHILD"

// TestHitKills runs itself as a child armed at commit.stored@3 and checks
// that the child died of SIGKILL at the third hit, after its line, with
// nothing after the point run.
func TestHitKills(t *testing.T) {
	if os.Getenv(crashChild) != "" {
		s, err := crashpoint.Parse(os.Getenv(crashChild), os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		for i := 1; i <= 5; i++ {
			fmt.Fprintf(os.Stderr, "hit %d\n", i)
			s.Hit(crashpoint.CommitStored)
		}
		os.Exit(0) // not reached when armed
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHitKills$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChild+"=commit.stored@3")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child: %v, want death by SIGKILL\n%s", err, stderr.String())
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want SIGKILL\n%s", exit, stderr.String())
	}
	if want := "hit 1\nhit 2\nhit 3\ncrashpoint: commit.stored\n"; stderr.String() != want {
		t.Fatalf("child wrote %q, want %q", stderr.String(), want)
	}
}
