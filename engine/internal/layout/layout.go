package layout

import (
	"crypto/rand"
	"encoding/hex"
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
)

// The files, under <state_dir>/<application_id>/:
//
//	<pipeline>-<partition>/                 a task's RocksDB (Dir.Task)
//	<pipeline>-<partition>/closed-at        when its task last closed (Task.MarkClosed)
//	<pipeline>-<partition>/closed-offsets.json
//	                                        its stores' changelog offsets as it closed
//	.deleting-<pipeline>-<partition>-<ns>/  a task directory being deleted (Dir.Clean)
//	static-join.json                        a static member's saved subscription
//	process-id                              the random id in the transactional id
//
// Existing state directories must keep working: a name or a format here
// changes only with a way to read the old one.

// File names in a task directory and in the application's directory.
const (
	// closedFile holds the time its task last closed: RFC 3339 text with
	// nanoseconds and a newline. A file rather than the directory's
	// mtime, which RocksDB's own files move and a copy loses.
	closedFile = "closed-at"
	// closedOffsetsFile holds the task's stores' changelog offsets as of
	// its last close: a JSON object of store name to next changelog
	// offset, {"changelog":{"seen":120}}.
	closedOffsetsFile = "closed-offsets.json"
	// deletingPrefix marks a directory being deleted.
	deletingPrefix = ".deleting-"
	// subscriptionFile is a static member's saved subscription.
	subscriptionFile = "static-join.json"
	// processIDFile is the random id of a process without an instance id.
	processIDFile = "process-id"
)

var taskDirRe = regexp.MustCompile(`^.+-[0-9]+$`)

// Dir is the state directory of one application: <state_dir>/<application_id>.
// It holds only the path; every method goes to the disk.
type Dir struct {
	path string
}

// New returns the directory of application applicationID under stateDir.
func New(stateDir, applicationID string) Dir {
	return Dir{path: filepath.Join(stateDir, applicationID)}
}

// Path is the directory's path.
func (d Dir) Path() string { return d.path }

// Task is one task's directory.
type Task struct {
	Pipeline  string
	Partition int32
	// Path is <state_dir>/<application_id>/<pipeline>-<partition>.
	Path string
}

// TaskName is the name of the directory of the task of pipeline on
// partition: <pipeline>-<partition>.
func TaskName(pipeline string, partition int32) string {
	return pipeline + "-" + strconv.Itoa(int(partition))
}

// Task returns the directory of the task of pipeline on partition.
func (d Dir) Task(pipeline string, partition int32) Task {
	return Task{Pipeline: pipeline, Partition: partition, Path: filepath.Join(d.path, TaskName(pipeline, partition))}
}

// ParseTaskDir is the inverse of TaskName. A directory being deleted is
// no task's.
func ParseTaskDir(name string) (pipeline string, partition int32, ok bool) {
	if !taskDirRe.MatchString(name) || strings.HasPrefix(name, deletingPrefix) {
		return "", 0, false
	}
	i := strings.LastIndexByte(name, '-')
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil {
		return "", 0, false
	}
	return name[:i], int32(p), true
}

// ScanTasks lists the task directories, sorted by name; none when the
// directory does not exist yet.
func (d Dir) ScanTasks() ([]Task, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ts []Task
	for _, ent := range entries {
		pipeline, partition, ok := ParseTaskDir(ent.Name())
		if !ok || !ent.IsDir() {
			continue
		}
		ts = append(ts, Task{Pipeline: pipeline, Partition: partition, Path: filepath.Join(d.path, ent.Name())})
	}
	return ts, nil
}

// MarkClosed records that the task's store closed at at, with its stores'
// changelog offsets as it closed; nil offsets (not known) remove the
// offsets file, so that the directory is not reported to the group. It
// does both steps even if one fails.
func (t Task) MarkClosed(at time.Time, changelog map[string]int64) error {
	var errs []error
	if changelog != nil {
		if err := t.WriteClosedOffsets(changelog); err != nil {
			errs = append(errs, fmt.Errorf("record closed store offsets: %w", err))
		}
	} else if err := removeIfExists(filepath.Join(t.Path, closedOffsetsFile)); err != nil {
		errs = append(errs, fmt.Errorf("remove closed store offsets: %w", err))
	}
	path := filepath.Join(t.Path, closedFile)
	if err := os.WriteFile(path, []byte(at.UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		errs = append(errs, fmt.Errorf("record close time: %w", err))
	}
	return errors.Join(errs...)
}

// MarkOpen removes the close time and the closed offsets: the open store
// moves on from them.
func (t Task) MarkOpen() error {
	var errs []error
	for _, name := range []string{closedFile, closedOffsetsFile} {
		if err := removeIfExists(filepath.Join(t.Path, name)); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// ClosedAt returns the close time MarkClosed recorded.
func (t Task) ClosedAt() (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(t.Path, closedFile))
	if err != nil {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	return at, err == nil
}

type closedOffsets struct {
	Changelog map[string]int64 `json:"changelog"`
}

// WriteClosedOffsets writes the closed offsets file, through a rename so
// that a reader never sees half of it.
func (t Task) WriteClosedOffsets(changelog map[string]int64) error {
	b, err := json.Marshal(closedOffsets{Changelog: changelog})
	if err != nil {
		return fmt.Errorf("encode %s: %w", closedOffsetsFile, err)
	}
	return writeAtomic(filepath.Join(t.Path, closedOffsetsFile), append(b, '\n'))
}

// ClosedOffsets returns the store offsets recorded when the task last
// closed; false when there are none or the file is unreadable.
func (t Task) ClosedOffsets() (map[string]int64, bool) {
	b, err := os.ReadFile(filepath.Join(t.Path, closedOffsetsFile))
	if err != nil {
		return nil, false
	}
	var off closedOffsets
	if err := json.Unmarshal(b, &off); err != nil || off.Changelog == nil {
		return nil, false
	}
	return off.Changelog, true
}

// ProcessID returns the random id kept in the directory, creating the
// directory and the id on first use: 16 hex digits.
func (d Dir) ProcessID() (string, error) {
	path := filepath.Join(d.path, processIDFile)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("process id: %w", err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(d.path, 0o755); err != nil {
		return "", fmt.Errorf("process id: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("process id: %w", err)
	}
	return id, nil
}

// SavedSubscription is what a static member that stopped cleanly
// subscribed with in its last join, for its restart to repeat.
type SavedSubscription struct {
	InstanceID string `json:"instance_id"`
	// Generation is the group generation the process was in as it
	// stopped.
	Generation int32 `json:"generation"`
	// Protocols is the metadata of the last join, by protocol name.
	Protocols map[string][]byte `json:"protocols"`
}

// SaveSubscription writes s, through a rename so that a reader never sees
// half of it. The directory must exist.
func (d Dir) SaveSubscription(s SavedSubscription) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(d.path, subscriptionFile), b)
}

// TakeSubscription reads and removes the saved subscription, so that a
// crash after the start that took it never repeats an old one. It returns
// nil when none is saved, when the file cannot be removed, and when it
// does not decode (a fresh join then follows).
func (d Dir) TakeSubscription() (*SavedSubscription, error) {
	path := filepath.Join(d.path, subscriptionFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read saved subscription: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("remove saved subscription: %w", err)
	}
	var s SavedSubscription
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil
	}
	return &s, nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
