package layout

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestTaskName(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dir       string
		pipeline  string
		partition int32
		ok        bool
	}{
		{name: "plain", dir: "count-3", pipeline: "count", partition: 3, ok: true},
		{name: "dash in pipeline", dir: "my-pipe-12", pipeline: "my-pipe", partition: 12, ok: true},
		{name: "largest partition", dir: "p-2147483647", pipeline: "p", partition: 2147483647, ok: true},
		{name: "partition overflows int32", dir: "p-2147483648"},
		{name: "no partition", dir: "not a task"},
		{name: "no pipeline", dir: "-1"},
		{name: "being deleted", dir: ".deleting-my-pipe-3-1"},
		{name: "negative partition", dir: "p--1", pipeline: "p-", partition: 1, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pipeline, partition, ok := ParseTaskDir(tc.dir)
			if pipeline != tc.pipeline || partition != tc.partition || ok != tc.ok {
				t.Fatalf("ParseTaskDir(%q) = %q, %d, %v; want %q, %d, %v", tc.dir, pipeline, partition, ok, tc.pipeline, tc.partition, tc.ok)
			}
			if ok && TaskName(pipeline, partition) != tc.dir {
				t.Errorf("TaskName(%q, %d) = %q, want %q", pipeline, partition, TaskName(pipeline, partition), tc.dir)
			}
		})
	}
	d := New("/state", "app")
	if got, want := d.Task("my-pipe", 7), (Task{Pipeline: "my-pipe", Partition: 7, Path: "/state/app/my-pipe-7"}); got != want {
		t.Errorf("Task = %+v, want %+v", got, want)
	}
	if d.Path() != "/state/app" {
		t.Errorf("Path = %q, want /state/app", d.Path())
	}
}

func mkdirs(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(root, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestScanTasks lists task directories only: not files, not directories
// named otherwise, not directories being deleted.
func TestScanTasks(t *testing.T) {
	d := New(t.TempDir(), "app")
	if ts, err := d.ScanTasks(); err != nil || ts != nil {
		t.Fatalf("before the directory exists: %v, %v; want none", ts, err)
	}
	mkdirs(t, d.Path(), "b-1", "a-10", "my-pipe-0", "other", "not a task", ".deleting-a-2-17")
	writeFile(t, filepath.Join(d.Path(), "file-3"), "")
	writeFile(t, filepath.Join(d.Path(), "process-id"), "x\n")
	ts, err := d.ScanTasks()
	if err != nil {
		t.Fatal(err)
	}
	want := []Task{d.Task("a", 10), d.Task("b", 1), d.Task("my-pipe", 0)}
	if !slices.Equal(ts, want) {
		t.Errorf("ScanTasks = %v, want %v", ts, want)
	}
}

// TestMarkClosed: a close writes closed-at and closed-offsets.json in
// their formats, a close with unknown offsets removes the offsets, and an
// open removes both.
func TestMarkClosed(t *testing.T) {
	td := New(t.TempDir(), "app").Task("p", 0)
	mkdirs(t, td.Path, ".")
	at := time.Date(2026, 12, 3, 11, 50, 48, 123456789, time.FixedZone("CET", 3600))
	if _, ok := td.ClosedAt(); ok {
		t.Error("a close time before any close")
	}
	if err := td.MarkClosed(at, map[string]int64{"seen": 120, "b": 0}); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(td.Path, "closed-at")), "2026-12-03T10:50:48.123456789Z\n"; got != want {
		t.Errorf("closed-at = %q, want %q", got, want)
	}
	if got, want := readFile(t, filepath.Join(td.Path, "closed-offsets.json")), `{"changelog":{"b":0,"seen":120}}`+"\n"; got != want {
		t.Errorf("closed-offsets.json = %q, want %q", got, want)
	}
	if got, ok := td.ClosedAt(); !ok || !got.Equal(at) {
		t.Errorf("ClosedAt = %v, %v; want %v", got, ok, at)
	}
	if got, ok := td.ClosedOffsets(); !ok || !maps.Equal(got, map[string]int64{"seen": 120, "b": 0}) {
		t.Errorf("ClosedOffsets = %v, %v", got, ok)
	}
	if exists(filepath.Join(td.Path, "closed-offsets.json.tmp")) {
		t.Error("the temporary offsets file was left")
	}

	later := at.Add(time.Minute)
	if err := td.MarkClosed(later, nil); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(td.Path, "closed-offsets.json")) {
		t.Error("a close with unknown offsets kept the old offsets")
	}
	if got, ok := td.ClosedAt(); !ok || !got.Equal(later) {
		t.Errorf("ClosedAt = %v, %v; want %v", got, ok, later)
	}

	if err := td.MarkClosed(later, map[string]int64{"seen": 1}); err != nil {
		t.Fatal(err)
	}
	if err := td.MarkOpen(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"closed-at", "closed-offsets.json"} {
		if exists(filepath.Join(td.Path, f)) {
			t.Errorf("%s is still there after the open", f)
		}
	}
	if err := td.MarkOpen(); err != nil {
		t.Errorf("open of a directory never closed: %v", err)
	}

	missing := New(t.TempDir(), "app").Task("p", 1)
	if err := missing.MarkClosed(at, map[string]int64{"s": 1}); err == nil {
		t.Error("a close in a missing directory reported no error")
	}
}

// TestClosedOffsets reads the offsets files a task may have left.
func TestClosedOffsets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string // "" for no file
		want    map[string]int64
		ok      bool
	}{
		{name: "none"},
		{name: "offsets", content: `{"changelog":{"seen":120}}` + "\n", want: map[string]int64{"seen": 120}, ok: true},
		{name: "no stores", content: `{"changelog":{}}`, want: map[string]int64{}, ok: true},
		{name: "no changelog", content: `{}`},
		{name: "half written", content: `{"changelog":{"se`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td := New(t.TempDir(), "app").Task("p", 0)
			mkdirs(t, td.Path, ".")
			if tc.content != "" {
				writeFile(t, filepath.Join(td.Path, "closed-offsets.json"), tc.content)
			}
			got, ok := td.ClosedOffsets()
			if ok != tc.ok || !maps.Equal(got, tc.want) || (ok && got == nil) {
				t.Errorf("ClosedOffsets = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestClosedAt reads close times, also one written by hand.
func TestClosedAt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    time.Time
		ok      bool
	}{
		{name: "none"},
		{name: "nanoseconds", content: "2026-12-03T10:50:48.123456789Z\n", want: time.Date(2026, 12, 3, 10, 50, 48, 123456789, time.UTC), ok: true},
		{name: "seconds, offset, spaces", content: " 2026-12-03T11:50:48+01:00 ", want: time.Date(2026, 12, 3, 10, 50, 48, 0, time.UTC), ok: true},
		{name: "garbage", content: "yesterday\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td := New(t.TempDir(), "app").Task("p", 0)
			mkdirs(t, td.Path, ".")
			if tc.content != "" {
				writeFile(t, filepath.Join(td.Path, "closed-at"), tc.content)
			}
			got, ok := td.ClosedAt()
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Errorf("ClosedAt = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestProcessID: the first call creates the directory and a random id,
// later ones read it back, and an id written by an earlier version is
// kept.
func TestProcessID(t *testing.T) {
	root := t.TempDir()
	d := New(root, "app")
	id, err := d.ProcessID()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
		t.Errorf("process id %q, want 16 hex digits", id)
	}
	if got := readFile(t, filepath.Join(root, "app", "process-id")); got != id+"\n" {
		t.Errorf("process-id = %q, want %q", got, id+"\n")
	}
	again, err := d.ProcessID()
	if err != nil || again != id {
		t.Errorf("second ProcessID = %q, %v; want %q", again, err, id)
	}
	other, err := New(root, "other").ProcessID()
	if err != nil || other == id {
		t.Errorf("another application's id = %q, %v; want a new one", other, err)
	}

	kept := New(t.TempDir(), "app")
	writeFile(t, filepath.Join(kept.Path(), "process-id"), "0123456789abcdef\n")
	if got, err := kept.ProcessID(); err != nil || got != "0123456789abcdef" {
		t.Errorf("ProcessID = %q, %v; want the saved 0123456789abcdef", got, err)
	}
}

// TestSavedSubscription: a saved subscription is taken once, in the
// file format of earlier versions.
func TestSavedSubscription(t *testing.T) {
	d := New(t.TempDir(), "app")
	path := filepath.Join(d.Path(), "static-join.json")
	if s, err := d.TakeSubscription(); s != nil || err != nil {
		t.Fatalf("TakeSubscription before any save = %v, %v; want nil, nil", s, err)
	}
	s := SavedSubscription{InstanceID: "a", Generation: 7, Protocols: map[string][]byte{"flowstate-v1": {1, 2}}}
	if err := d.SaveSubscription(s); err == nil {
		t.Error("a save into a missing directory reported no error")
	}
	mkdirs(t, d.Path(), ".")
	if err := d.SaveSubscription(s); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, path), `{"instance_id":"a","generation":7,"protocols":{"flowstate-v1":"AQI="}}`; got != want {
		t.Errorf("static-join.json = %s, want %s", got, want)
	}
	got, err := d.TakeSubscription()
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || got.InstanceID != "a" || got.Generation != 7 || len(got.Protocols) != 1 || !slices.Equal(got.Protocols["flowstate-v1"], []byte{1, 2}) {
		t.Errorf("TakeSubscription = %+v, want %+v", got, s)
	}
	if exists(path) {
		t.Error("the saved subscription is still there after it was taken")
	}
	if again, err := d.TakeSubscription(); again != nil || err != nil {
		t.Errorf("second TakeSubscription = %v, %v; want nil, nil", again, err)
	}

	writeFile(t, path, `{"instance_id":`)
	if got, err := d.TakeSubscription(); got != nil || err != nil {
		t.Errorf("TakeSubscription of a broken file = %v, %v; want nil, nil", got, err)
	}
	if exists(path) {
		t.Error("a broken saved subscription was left")
	}
}
