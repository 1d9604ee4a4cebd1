// Package poll makes a test wait until a condition holds, checking it until
// a deadline instead of sleeping for a guessed time.
package poll

import (
	"testing"
	"time"
)

// interval is the shortest pause between two checks.
const interval = 5 * time.Millisecond

// Until checks cond until it returns nil, and fails tb with cond's last
// error when timeout passes first. cond says what it still waits for in
// that error. Between checks Until pauses 5 ms, or four times as long as
// the last check took, so that a costly check (reading a topic) leaves the
// machine to the code under test. In a testing/synctest bubble the pauses
// and the timeout are the bubble's fake time. cond runs on the calling
// goroutine and may call tb.Fatal.
func Until(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		start := time.Now()
		err := cond()
		if err == nil {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			tb.Fatalf("after %v: %v", timeout, err)
			return
		}
		t := time.NewTimer(min(left, max(interval, 4*time.Since(start))))
		<-t.C
	}
}
