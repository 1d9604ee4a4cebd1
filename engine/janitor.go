package engine

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// State cleanup. A task that leaves the process (its partition was revoked,
// or the engine stopped) keeps its directory, so that if it comes back
// within StateCleanupDelay it restores only what its changelogs gained
// meanwhile. The janitor deletes the directories under
// <state_dir>/<application_id>/ that no task uses and that have been unused
// for longer than the delay:
//
//   - When a task's store closes, the task writes the time into the file
//     closed-at of its directory (RFC 3339 text; a file rather than the
//     directory's mtime, which RocksDB's own files move and a copy loses);
//     when a task opens the directory again it removes the file.
//   - A directory is unused since the later of its closed-at time and the
//     engine's start: a directory found at startup (closed by an earlier
//     run, or left by a crash with no closed-at) is deleted only if no task
//     of this run takes it within the delay.
//   - Only directories named like task directories (<pipeline>-<partition>)
//     are touched. One is first renamed to .deleting-<name> while the
//     tracker's lock keeps tasks from opening it, then removed; a leftover
//     .deleting- directory (a crash in between) is removed at the next
//     pass.

// closedFile is the file in a task directory holding the time its task
// last closed.
const closedFile = "closed-at"

// deletingPrefix marks a directory being deleted.
const deletingPrefix = ".deleting-"

var taskDirRe = regexp.MustCompile(`^.+-[0-9]+$`)

// markClosed records in the task's directory that its store closed now.
func (e *Engine) markClosed(t *task) {
	path := filepath.Join(e.taskDir(t.key), closedFile)
	if err := os.WriteFile(path, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		t.log.Warn("record close time", "err", err)
	}
}

// markOpen removes the close time of the task's directory.
func (e *Engine) markOpen(t *task) {
	if err := os.Remove(filepath.Join(e.taskDir(t.key), closedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.log.Warn("remove close time", "err", err)
	}
}

// janitor deletes unused task directories until ctx ends. started is the
// engine's start.
func (e *Engine) janitor(ctx context.Context, started time.Time) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next := e.cleanState(time.Now(), started)
		// A directory closed after this pass is due no earlier than a
		// delay from now, so the next pass is never later than that.
		timer.Reset(max(time.Until(next), time.Millisecond))
	}
}

// cleanState deletes the task directories unused for longer than the delay
// as of now, and returns when the next one may be due.
func (e *Engine) cleanState(now, started time.Time) (next time.Time) {
	delay := e.cfg.StateCleanupDelay
	next = now.Add(delay)
	dir := filepath.Join(e.cfg.StateDir, e.cfg.ApplicationID)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			e.log.Warn("state cleanup", "dir", dir, "err", err)
		}
		return next
	}
	for _, ent := range entries {
		name := ent.Name()
		path := filepath.Join(dir, name)
		if !ent.IsDir() {
			continue
		}
		if strings.HasPrefix(name, deletingPrefix) {
			if err := os.RemoveAll(path); err != nil {
				e.log.Warn("state cleanup", "dir", path, "err", err)
			}
			continue
		}
		if !taskDirRe.MatchString(name) {
			continue
		}
		since := started
		if closed, ok := readClosed(path); ok && closed.After(since) {
			since = closed
		}
		if due := since.Add(delay); now.Before(due) {
			if due.Before(next) {
				next = due
			}
			continue
		}
		trash := filepath.Join(dir, deletingPrefix+name+"-"+strconv.FormatInt(now.UnixNano(), 10))
		if !e.moveUnused(path, trash) {
			continue
		}
		if err := os.RemoveAll(trash); err != nil {
			e.log.Warn("state cleanup", "dir", trash, "err", err)
			continue
		}
		e.log.Info("state directory deleted", "dir", path, "unused_since", since.Round(time.Second), "state_cleanup_delay", delay)
	}
	return next
}

// moveUnused renames the task directory path to trash unless a task uses
// it; it reports whether it did.
func (e *Engine) moveUnused(path, trash string) bool {
	e.track.mu.Lock()
	defer e.track.mu.Unlock()
	for t := range e.track.live {
		if e.taskDir(t.key) == path {
			return false
		}
	}
	if err := os.Rename(path, trash); err != nil {
		e.log.Warn("state cleanup", "dir", path, "err", err)
		return false
	}
	return true
}

// readClosed returns the close time recorded in the task directory dir.
func readClosed(dir string) (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(dir, closedFile))
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	return t, err == nil
}
