package layout

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// State cleanup. A task that leaves the process keeps its directory, so
// that if it comes back within the cleanup delay it restores only what its
// changelogs gained meanwhile. Clean deletes the task directories no task
// uses that have been unused for longer than the delay:
//
//   - A directory is unused since the later of its closed-at time
//     (Task.MarkClosed; MarkOpen removes it) and started, the start of the
//     process: a directory found at startup (closed by an earlier run, or
//     left by a crash with no closed-at) is deleted only if no task of this
//     run takes it within the delay.
//   - Only directories named like task directories (<pipeline>-<partition>)
//     are touched. One is first renamed to .deleting-<name>-<ns> while the
//     caller's lock keeps tasks from opening it, then removed outside the
//     lock; a leftover .deleting- directory (a crash in between) is removed
//     at the next pass.

// Cleaned is what one Clean pass did.
type Cleaned struct {
	// Next is when the next directory may be due: the earliest due time
	// of a kept directory, and no later than a delay after the pass (a
	// directory closed after the pass is due no earlier than that).
	Next time.Time
	// Deleted lists the task directories deleted, in name order.
	Deleted []Deleted
	// Errs are the file system errors met; each names its path. A
	// directory that could not be deleted is tried again at the next pass.
	Errs []error
}

// Deleted is one deleted task directory.
type Deleted struct {
	Path        string
	UnusedSince time.Time
}

// Clean deletes the task directories unused for longer than delay as of
// now; started is when the process started. lock keeps tasks from opening
// directories: Clean holds it while it calls inUse with a directory's name
// and, if that reports false, renames the directory away, so that a task
// never opens a directory being deleted. inUse must not take lock.
func (d Dir) Clean(now, started time.Time, delay time.Duration, lock sync.Locker, inUse func(name string) bool) Cleaned {
	c := Cleaned{Next: now.Add(delay)}
	entries, err := os.ReadDir(d.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.Errs = append(c.Errs, err)
		}
		return c
	}
	for _, ent := range entries {
		name := ent.Name()
		path := filepath.Join(d.path, name)
		if !ent.IsDir() {
			continue
		}
		if strings.HasPrefix(name, deletingPrefix) {
			if err := os.RemoveAll(path); err != nil {
				c.Errs = append(c.Errs, err)
			}
			continue
		}
		if !taskDirRe.MatchString(name) {
			continue
		}
		since := started
		if closed, ok := (Task{Path: path}).ClosedAt(); ok && closed.After(since) {
			since = closed
		}
		if due := since.Add(delay); now.Before(due) {
			if due.Before(c.Next) {
				c.Next = due
			}
			continue
		}
		trash := filepath.Join(d.path, deletingPrefix+name+"-"+strconv.FormatInt(now.UnixNano(), 10))
		moved, err := moveUnused(path, trash, lock, func() bool { return inUse(name) })
		if err != nil {
			c.Errs = append(c.Errs, err)
		}
		if !moved {
			continue
		}
		if err := os.RemoveAll(trash); err != nil {
			c.Errs = append(c.Errs, err)
			continue
		}
		c.Deleted = append(c.Deleted, Deleted{Path: path, UnusedSince: since})
	}
	return c
}

// moveUnused renames path to trash under lock unless inUse; it reports
// whether it did.
func moveUnused(path, trash string, lock sync.Locker, inUse func() bool) (bool, error) {
	lock.Lock()
	defer lock.Unlock()
	if inUse() {
		return false, nil
	}
	if err := os.Rename(path, trash); err != nil {
		return false, err
	}
	return true, nil
}
