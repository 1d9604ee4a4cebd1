package poll_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flowstate/flowstate/internal/poll"
)

func TestUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		n := 0
		poll.Until(t, time.Minute, func() error {
			if n++; n < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if n != 3 {
			t.Fatalf("cond checked %d times, want 3", n)
		}
		if took := time.Since(start); took != 10*time.Millisecond {
			t.Fatalf("took %v, want two 5 ms pauses", took)
		}
	})
}

// fatalTB records the failure of Until without ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestUntilTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fatalTB{TB: t}
		start := time.Now()
		n := 0
		poll.Until(f, time.Second, func() error {
			n++
			return fmt.Errorf("check %d failed", n)
		})
		if took := time.Since(start); took != time.Second {
			t.Errorf("gave up after %v, want 1s", took)
		}
		if want := fmt.Sprintf("check %d failed", n); !strings.Contains(f.msg, want) || !strings.Contains(f.msg, "after 1s") {
			t.Errorf("failure %q, want the timeout and the last error %q", f.msg, want)
		}
	})
}

func TestUntilBacksOffCostlyChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var checks []time.Time
		poll.Until(t, time.Minute, func() error {
			checks = append(checks, time.Now())
			time.Sleep(100 * time.Millisecond) // a check that takes 100 ms
			if len(checks) < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		for i := 1; i < len(checks); i++ {
			if gap := checks[i].Sub(checks[i-1]); gap != 500*time.Millisecond {
				t.Errorf("check %d came %v after the one before, want 100 ms of check and 400 ms of pause", i, gap)
			}
		}
	})
}
