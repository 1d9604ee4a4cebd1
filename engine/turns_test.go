package engine

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
)

// TestTurnPool: of two turns, catch-ups hold at most one; an active
// restore that waits takes the next free turn before waiting catch-ups;
// a waiter whose context ends leaves the queue, and a released turn goes
// on to the next.
func TestTurnPool(t *testing.T) {
	// The pool waits on channels only: in a bubble, synctest.Wait returns
	// once every goroutine waits, so a turn not granted by then never is.
	synctest.Test(t, testTurnPool)
}

func testTurnPool(t *testing.T) {
	p := newTurnPool(2)
	ctx := t.Context()
	take := func(standby bool) (func(), chan struct{}) {
		got := make(chan struct{})
		var rel func()
		go func() {
			r, err := p.acquire(ctx, standby, nil)
			if err != nil {
				t.Error(err)
			}
			rel = r
			close(got)
		}()
		return func() { <-got; rel() }, got
	}
	// granted reports whether c is closed once every goroutine of the
	// bubble waits: whether the turn came.
	granted := func(c chan struct{}) bool {
		synctest.Wait()
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	held := func(c chan struct{}) bool { return !granted(c) }
	relS1, s1 := take(true)
	if !granted(s1) {
		t.Fatal("the first catch-up got no turn of two free")
	}
	relS2, s2 := take(true)
	if !held(s2) {
		t.Fatal("a second catch-up got a turn: catch-ups hold at most all turns but one")
	}
	relA1, a1 := take(false)
	if !granted(a1) {
		t.Fatal("an active restore got no turn while one was free")
	}
	relA2, a2 := take(false)
	if !held(a2) {
		t.Fatal("an active restore got a turn of none free")
	}
	relS1() // the freed turn goes to the waiting active restore, not the catch-up
	if !granted(a2) || !held(s2) {
		t.Fatal("a freed turn went to a catch-up while an active restore waited")
	}
	relA1()
	if !granted(s2) {
		t.Fatal("the waiting catch-up got no turn once no active restore waited")
	}
	relA2()
	relS2()

	// A waiter that gives up leaves no turn taken.
	cctx, cancel := context.WithCancel(ctx)
	r1, _ := p.acquire(ctx, false, nil)
	r2, _ := p.acquire(ctx, false, nil)
	done := make(chan error, 1)
	go func() {
		_, err := p.acquire(cctx, false, nil)
		done <- err
	}()
	synctest.Wait() // it is queued
	p.mu.Lock()
	queued := len(p.waitAct)
	p.mu.Unlock()
	if queued != 1 {
		t.Fatalf("%d active restores queued, want the one waiting", queued)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled waiter: %v, want context.Canceled", err)
	}
	r1()
	r2()
	if p.active != 0 || p.standby != 0 || len(p.waitAct) != 0 || len(p.waitStby) != 0 {
		t.Errorf("pool not empty after all released: %+v", p)
	}
}
