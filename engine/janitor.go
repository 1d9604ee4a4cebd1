package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flowstate/flowstate/state"
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
//     directory's mtime, which RocksDB's own files move and a copy loses),
//     and the stores' changelog offsets into closed-offsets.json, which the
//     group balancer reports at every join without opening the store
//     (balancer.go); when a task opens the directory again it removes both.
//     A directory a crash left without offsets gets them at the next start,
//     before the engine joins the group (recoverClosedOffsets).
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

// closedOffsetsFile is the file in a task directory holding its stores'
// changelog offsets as of its last close: a JSON object of store name to
// next changelog offset, {"changelog":{"seen":120}}.
const closedOffsetsFile = "closed-offsets.json"

type closedOffsets struct {
	Changelog map[string]int64 `json:"changelog"`
}

// deletingPrefix marks a directory being deleted.
const deletingPrefix = ".deleting-"

var taskDirRe = regexp.MustCompile(`^.+-[0-9]+$`)

// markClosed records in the task's directory that its store closed now,
// with the stores' changelog offsets as it closed (nil when they are not
// known: the directory is then not reported to the group).
func (e *Engine) markClosed(t *replica, changelog map[string]int64) {
	dir := e.taskDir(t.key)
	if changelog != nil {
		if err := writeClosedOffsets(dir, changelog); err != nil {
			t.log.Warn("record closed store offsets", "err", err)
		}
	} else if err := os.Remove(filepath.Join(dir, closedOffsetsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.log.Warn("remove closed store offsets", "err", err)
	}
	path := filepath.Join(dir, closedFile)
	if err := os.WriteFile(path, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		t.log.Warn("record close time", "err", err)
	}
}

// markOpen removes the close time and the closed offsets of the task's
// directory: the open store moves on from them.
func (e *Engine) markOpen(t *replica) {
	for _, name := range []string{closedFile, closedOffsetsFile} {
		if err := os.Remove(filepath.Join(e.taskDir(t.key), name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.log.Warn("remove "+name, "err", err)
		}
	}
}

// writeClosedOffsets writes the closed offsets file of dir, through a
// rename so that a reader never sees half of it.
func writeClosedOffsets(dir string, changelog map[string]int64) error {
	b, err := json.Marshal(closedOffsets{Changelog: changelog})
	if err != nil {
		return fmt.Errorf("encode %s: %w", closedOffsetsFile, err)
	}
	path := filepath.Join(dir, closedOffsetsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// readClosedOffsets returns the store offsets recorded when the task of
// directory dir last closed.
func readClosedOffsets(dir string) (map[string]int64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, closedOffsetsFile))
	if err != nil {
		return nil, false
	}
	var off closedOffsets
	if err := json.Unmarshal(b, &off); err != nil || off.Changelog == nil {
		return nil, false
	}
	return off.Changelog, true
}

// recoverClosedOffsets writes the closed offsets of every task directory of
// a configured pipeline that has none (a crash closed no store), opening
// each such store once, so that the first join reports it. It runs before
// any task exists.
func (e *Engine) recoverClosedOffsets() {
	dir := filepath.Join(e.cfg.StateDir, e.cfg.ApplicationID)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	stores := map[string][]string{}
	for _, p := range e.pipelines {
		stores[p.cfg.Name] = p.cfg.Stores
	}
	for _, ent := range entries {
		key, ok := parseTaskDir(ent.Name())
		if !ok || !ent.IsDir() {
			continue
		}
		names, ok := stores[key.pipeline]
		path := filepath.Join(dir, ent.Name())
		if !ok {
			continue
		}
		if _, ok := readClosedOffsets(path); ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(path, "CURRENT")); err != nil {
			continue // not a RocksDB (yet): nothing to report
		}
		if err := recoverOffsets(path, names, e.budget); err != nil {
			e.log.Warn("read store offsets", "dir", path, "err", err)
		}
	}
}

func recoverOffsets(dir string, stores []string, budget *state.Budget) error {
	db, err := state.Open(state.Config{Dir: dir, Stores: stores, Budget: budget})
	if err != nil {
		return err
	}
	off, err := db.Offsets()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return writeClosedOffsets(dir, off.Changelog)
}

// janitor deletes unused task directories until ctx ends. started is the
// engine's start.
func (e *Engine) janitor(ctx context.Context, started time.Time) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
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
		if e.taskDir(t.base().key) == path {
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
