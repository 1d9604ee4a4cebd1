package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Exactly-once: every commit interval the engine runs one Kafka transaction
// around the commit path of commit.go, for all its tasks at once: step 1
// (prepare) on every task, the transaction's end, then step 3 (store) on
// every task after a commit, or a discard after an abort. A crash between
// the end and step 3 leaves a store one transaction behind its changelog;
// the restart replays that transaction's records, read committed, and
// nothing else. An aborted transaction never reaches RocksDB, so a store is
// never wiped.

// ErrFenced is returned by Run when another process took over this one's
// identity: its instance_id in the group, or its transactional id.
var ErrFenced = errors.New("engine: fenced by a newer instance with the same identity")

// errCrashed ends Run like a crash, in tests: nothing more is written.
var errCrashed = errors.New("engine: simulated crash")

type txnPhase int

const (
	txnPrepare txnPhase = iota
	txnCommitted
	txnAborted
)

type txnReq struct {
	phase txnPhase
	reply chan error
}

// transact runs one phase of an exactly-once commit on the task goroutine.
func (t *task) transact(ctx context.Context, req txnReq) error {
	var err error
	switch req.phase {
	case txnPrepare:
		// What was handed over before the commit belongs to this
		// transaction.
		if err = t.drain(ctx); err == nil {
			t.prepared, err = t.prepare(ctx)
		}
	case txnCommitted:
		err = t.store(t.prepared)
		t.prepared = prepared{}
	case txnAborted:
		t.discard()
		t.prepared = prepared{}
	}
	req.reply <- err
	return err
}

// commitSoon asks the poll loop for an early exactly-once commit, when a
// task's write buffer is full.
func (e *Engine) commitSoon() {
	select {
	case e.soon <- struct{}{}:
	default:
	}
}

// commitTxn ends the open transaction for every task: prepare, commit (or
// abort when commit is false or a task cannot prepare), finish. It returns
// an error only when the engine cannot go on.
func (e *Engine) commitTxn(ctx context.Context, commit bool) (err error) {
	begin := time.Now()
	committed := false
	defer func() {
		cerr := err
		if cerr == nil && !committed {
			cerr = errTxnAborted
		}
		e.track.commits.done(&e.cfg.Hooks, begin, cerr)
	}()
	e.mu.Lock()
	ts := e.tasksLocked()
	e.mu.Unlock()

	var perr error
	if commit {
		perr = e.phase(ts, txnPrepare)
		e.cfg.CrashPoints.Hit(CrashProduced)
	}
	try := kgo.TryCommit
	if !commit || perr != nil {
		try = kgo.TryAbort
	}
	committed, err = e.sess.End(ctx, try)
	if err != nil {
		_ = e.phase(ts, txnAborted)
		if isFenced(err) {
			e.log.Error("fenced: another instance started with transactional id "+e.txnID+"; stopping without committing", "err", err)
			return fmt.Errorf("%w: %s: %w", ErrFenced, e.txnID, err)
		}
		return fmt.Errorf("end transaction: %w", err)
	}
	if committed && e.crashAfterCommit != nil && e.crashAfterCommit(preparedChanges(ts)) {
		// Test fault: the process dies between the Kafka commit and the
		// RocksDB batches.
		return errCrashed
	}
	if committed {
		e.cfg.CrashPoints.Hit(CrashEnded)
		err = e.phase(ts, txnCommitted)
	} else {
		err = e.phase(ts, txnAborted)
		if perr == nil && commit {
			e.log.Info("transaction aborted by a rebalance; its records are processed again")
		}
	}
	return errors.Join(perr, err)
}

// preparedChanges counts the changelog records of a prepared transaction;
// the replies of the prepare phase ordered the tasks' writes before this.
func preparedChanges(ts []*task) int {
	n := 0
	for _, t := range ts {
		n += t.prepared.changes
	}
	return n
}

// phase sends one commit phase to every task and waits for all of them.
func (e *Engine) phase(ts []*task, p txnPhase) error {
	replies := make([]chan error, len(ts))
	for i, t := range ts {
		replies[i] = make(chan error, 1)
		select {
		case t.txn <- txnReq{phase: p, reply: replies[i]}:
		case <-t.done:
			replies[i] <- nil // ended: it has nothing in the transaction
		}
	}
	var errs []error
	for i, t := range ts {
		select {
		case err := <-replies[i]:
			if err != nil {
				errs = append(errs, err)
			}
		case <-t.done:
		}
	}
	return errors.Join(errs...)
}

func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

// transactionalID is stable for one process identity, so that a restarted
// process fences its predecessor and finishes the transaction it left open:
// <application_id>-<instance_id>, or a random id kept in the state
// directory when instance_id is not set.
func (e *Engine) transactionalID() (string, error) {
	if e.cfg.InstanceID != "" {
		return e.cfg.ApplicationID + "-" + e.cfg.InstanceID, nil
	}
	id, err := e.layout().ProcessID()
	if err != nil {
		return "", err
	}
	return e.cfg.ApplicationID + "-" + id, nil
}

// errTxnAborted is what Hooks.CommitDone gets for an aborted transaction.
var errTxnAborted = errors.New("engine: transaction aborted")
