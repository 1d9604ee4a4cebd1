package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/state"
)

// Exactly-once: every commit interval the engine runs one Kafka transaction
// for all its tasks, in two phases.
//
//  1. prepare: each task processes what it was handed, produces its
//     collapsed write buffer to its changelogs (inside the open transaction,
//     like every output it emitted) and waits for the records to be
//     acknowledged.
//  2. End: the transaction commits the changelog records, the outputs and
//     the input offsets of the consumer group together, or aborts.
//  3. finish: after a commit each task writes its buffer, its changelog
//     offsets and its input offsets in one RocksDB batch; after an abort it
//     drops the buffer and rewinds to its last commit.
//
// A crash between 2 and 3 leaves a store one transaction behind its
// changelog; the restart replays that transaction's records, read
// committed, and nothing else. An aborted transaction never reaches
// RocksDB, so a store is never wiped.

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
func (t *task) transact(req txnReq) error {
	var err error
	switch req.phase {
	case txnPrepare:
		err = t.prepare()
	case txnCommitted:
		err = t.finish()
	case txnAborted:
		t.db.Discard()
		t.since = CommitInfo{}
		t.processed = t.durableOffsets()
		t.prepared = state.Offsets{}
	}
	req.reply <- err
	return err
}

// prepare processes the records already handed over, then produces the
// changelog records of the write buffer and waits for every record the
// task produced in this transaction.
func (t *task) prepare() error {
	for {
		select {
		case recs := <-t.in:
			if err := t.process(recs); err != nil {
				return err
			}
			continue
		default:
		}
		break
	}
	changes := t.db.Pending()
	recs := t.produceChangelog(changes)
	if err := t.awaitProduced(); err != nil {
		return err
	}
	t.prepared = t.offsetsAfter(changes, recs)
	t.preparedChanges = len(changes)
	return nil
}

// finish writes the committed transaction's share of this task to RocksDB.
func (t *task) finish() error {
	return t.commitLocal(t.prepared, t.preparedChanges, time.Now())
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
func (e *Engine) commitTxn(ctx context.Context, commit bool) error {
	e.mu.Lock()
	ts := e.tasksLocked()
	e.mu.Unlock()

	var perr error
	if commit {
		perr = e.phase(ts, txnPrepare)
		e.cfg.CrashPoints.Hit("commit.produced") // test-only: every task prepared, the transaction not ended
	}
	try := kgo.TryCommit
	if !commit || perr != nil {
		try = kgo.TryAbort
	}
	committed, err := e.sess.End(ctx, try)
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
		e.cfg.CrashPoints.Hit("commit.ended") // test-only: transaction committed, RocksDB batches not written
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
		n += t.preparedChanges
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
	dir := filepath.Join(e.cfg.StateDir, e.cfg.ApplicationID)
	path := filepath.Join(dir, "process-id")
	if b, err := os.ReadFile(path); err == nil {
		return e.cfg.ApplicationID + "-" + strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("process id: %w", err)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("process id: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(id[:])+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("process id: %w", err)
	}
	return e.cfg.ApplicationID + "-" + hex.EncodeToString(id[:]), nil
}
