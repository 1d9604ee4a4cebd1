package restore

import (
	"errors"
	"fmt"

	"github.com/flowstate/flowstate/internal/field"
	"github.com/flowstate/flowstate/state"
)

// TruncatedPolicy is what a restore does when records that a store has not
// seen were deleted from its changelog: the store's changelog offset is
// above 0 but below the changelog's log start offset, because of
// DeleteRecords or retention (compaction keeps the log start at 0). Picking
// up at the log start would leave a silent gap, so neither policy does.
type TruncatedPolicy string

// The truncated-changelog policies.
const (
	// TruncatedRebuild clears the store and restores it from the log start,
	// logging a warning. The default.
	TruncatedRebuild TruncatedPolicy = "rebuild"
	// TruncatedFail fails the restore with a *TruncatedError.
	TruncatedFail TruncatedPolicy = "fail"
)

// Validate reports a policy other than rebuild or fail; the empty policy is
// rebuild. The error is a *field.Error with an empty key, for the config
// that holds the policy to name.
func (p TruncatedPolicy) Validate() error {
	switch p {
	case "", TruncatedRebuild, TruncatedFail:
		return nil
	}
	return field.Errorf("", "%q is not rebuild or fail", string(p))
}

// ErrTruncated is wrapped by every *TruncatedError.
var ErrTruncated = errors.New("restore: changelog truncated")

// TruncatedError reports, under TruncatedFail, a changelog that no longer
// holds the records after a store's offset.
type TruncatedError struct {
	Task      string
	Store     string
	Topic     string
	Partition int32
	// Stored is the store's changelog offset: the next record it needs.
	Stored int64
	// LogStart is the changelog partition's first offset; the records in
	// [Stored, LogStart) are gone.
	LogStart int64
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("restore %s: store %s: changelog %s partition %d was truncated: it starts at offset %d, the store's offset is %d (offsets %d to %d were deleted before the store saw them)",
		e.Task, e.Store, e.Topic, e.Partition, e.LogStart, e.Stored, e.Stored, e.LogStart-1)
}

// Unwrap returns ErrTruncated.
func (e *TruncatedError) Unwrap() error { return ErrTruncated }

// truncated applies cfg.OnTruncated to the store of l, whose offset stored
// is below the changelog's log start.
func truncated(cfg Config, db *state.DB, l Changelog, store string, stored, logStart int64) error {
	if cfg.OnTruncated == TruncatedFail {
		return &TruncatedError{Task: cfg.Task, Store: store, Topic: l.Topic, Partition: l.Partition, Stored: stored, LogStart: logStart}
	}
	cfg.Logger.Warn("changelog truncated below the store's offset: clearing the store and restoring it from the log start",
		"task", cfg.Task, "store", store, "topic", l.Topic, "partition", l.Partition,
		"stored_offset", stored, "log_start", logStart, "lost_offsets", logStart-stored)
	if err := db.ClearStore(l.Store); err != nil {
		return fmt.Errorf("restore %s: rebuild truncated store: %w", cfg.Task, err)
	}
	return nil
}
