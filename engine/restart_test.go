package engine

import (
	"errors"
	"testing"
	"time"
)

// TestRestartBackoff checks the exponential-delay shape: initial, times the
// multiplier per failure up to the max, back to initial after a healthy
// period, jitter within its factor, nothing scheduled under never.
func TestRestartBackoff(t *testing.T) {
	r := Restart{InitialBackoff: time.Second, MaxBackoff: 5 * time.Second, BackoffMultiplier: 2, JitterFactor: new(0.0), ResetBackoffThreshold: time.Minute}
	r.EnsureDefaults()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	h := newHistory(now)
	boom := errors.New("boom")
	// Each run fails 10s after its restart: never healthy for a minute.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		now = now.Add(10 * time.Second)
		if d := h.failedRun(&r, boom, now); d != want {
			t.Fatalf("failure %d: delay %s, want %s", i+1, d, want)
		}
		if h.due(now.Add(want-time.Millisecond)) || !h.due(now.Add(want)) {
			t.Fatalf("failure %d: due before or not at %s", i+1, want)
		}
		h.restarted(now.Add(want))
		now = now.Add(want)
	}
	// Healthy for a minute: back to the initial backoff.
	now = now.Add(time.Minute)
	if d := h.failedRun(&r, boom, now); d != time.Second {
		t.Fatalf("after a healthy minute: delay %s, want 1s", d)
	}
	var info TaskInfo
	h.fill(&info)
	if info.Restarts != 5 || info.Error != "boom" || !info.FailedAt.Equal(now) || !info.RestartAt.Equal(now.Add(time.Second)) {
		t.Fatalf("info %+v", info)
	}

	// Jitter stays within its factor.
	r.JitterFactor = new(0.5)
	for range 100 {
		if d := r.jitter(time.Second); d < 500*time.Millisecond || d > 1500*time.Millisecond {
			t.Fatalf("jitter of 1s by 0.5: %s", d)
		}
	}

	r.Strategy = RestartNever
	h = newHistory(now)
	if d := h.failedRun(&r, boom, now); d != -1 || h.due(now.Add(time.Hour)) {
		t.Fatalf("never: delay %s, due %v", d, h.due(now.Add(time.Hour)))
	}
}
