package layout

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// heldLock is a sync.Locker that knows whether it is held.
type heldLock struct {
	mu   sync.Mutex
	held bool
}

func (l *heldLock) Lock()   { l.mu.Lock(); l.held = true }
func (l *heldLock) Unlock() { l.held = false; l.mu.Unlock() }

// TestClean runs one cleanup pass over a state directory: which
// directories go, which stay, and when the next pass is due.
func TestClean(t *testing.T) {
	const delay = 10 * time.Minute
	started := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	never := time.Duration(-1) // no closed-at file
	for _, tc := range []struct {
		name string
		// dirs are the task directories, by the time their task closed
		// relative to started.
		dirs  map[string]time.Duration
		other []string // further entries: directories, or files ending in /
		inUse []string
		now   time.Duration // after started
		// want is what is left, sorted; deleted what went, by unused
		// since relative to started.
		want    []string
		deleted map[string]time.Duration
		next    time.Duration // after started
	}{
		{
			name: "found at start, within the delay",
			dirs: map[string]time.Duration{"p-0": never, "p-1": -time.Hour},
			now:  delay - time.Nanosecond,
			want: []string{"p-0", "p-1"},
			next: delay, // both due a delay after the start
		},
		{
			name:    "found at start, unused for the delay",
			dirs:    map[string]time.Duration{"p-0": never, "p-1": -time.Hour},
			now:     delay,
			deleted: map[string]time.Duration{"p-0": 0, "p-1": 0},
			next:    2 * delay,
		},
		{
			name:    "closed in this run",
			dirs:    map[string]time.Duration{"p-0": time.Minute, "p-1": 3 * time.Minute, "p-2": 5 * time.Minute},
			now:     13 * time.Minute,
			want:    []string{"p-2"},
			deleted: map[string]time.Duration{"p-0": time.Minute, "p-1": 3 * time.Minute},
			next:    15 * time.Minute, // p-2's due time
		},
		{
			name:  "in use",
			dirs:  map[string]time.Duration{"p-0": never, "my-pipe-3": time.Minute},
			inUse: []string{"p-0", "my-pipe-3"},
			now:   time.Hour,
			want:  []string{"my-pipe-3", "p-0"},
			next:  time.Hour + delay,
		},
		{
			name:    "leftovers of an interrupted deletion",
			dirs:    map[string]time.Duration{"p-0": 0},
			other:   []string{".deleting-p-1-1764763200000000000", ".deleting-p-2-1"},
			now:     time.Minute,
			want:    []string{"p-0"},
			deleted: map[string]time.Duration{},
			next:    delay,
		},
		{
			name:  "not task directories",
			other: []string{"other", "not a task", "p-0/", "static-join.json/", "process-id/"},
			now:   time.Hour,
			want:  []string{"not a task", "other", "p-0", "process-id", "static-join.json"},
			next:  time.Hour + delay,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(t.TempDir(), "app")
			for name, closed := range tc.dirs {
				td := Task{Path: filepath.Join(d.Path(), name)}
				mkdirs(t, td.Path, "000001.sst-like") // a directory with content
				if closed != never {
					if err := td.MarkClosed(started.Add(closed), map[string]int64{"s": 1}); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, name := range tc.other {
				if n, ok := strings.CutSuffix(name, "/"); ok {
					writeFile(t, filepath.Join(d.Path(), n), "x")
				} else {
					mkdirs(t, d.Path(), filepath.Join(name, "data"))
				}
			}
			lock := &heldLock{}
			var asked []string
			inUse := func(name string) bool {
				if !lock.held {
					t.Errorf("inUse(%s) called without the lock", name)
				}
				asked = append(asked, name)
				return slices.Contains(tc.inUse, name)
			}

			c := d.Clean(started.Add(tc.now), started, delay, lock, inUse)

			if len(c.Errs) != 0 {
				t.Errorf("errors: %v", c.Errs)
			}
			if lock.held {
				t.Error("the lock is still held")
			}
			if want := started.Add(tc.next); !c.Next.Equal(want) {
				t.Errorf("next pass at +%s, want +%s", c.Next.Sub(started), tc.next)
			}
			var left []string
			ents, err := os.ReadDir(d.Path())
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				left = append(left, e.Name())
			}
			if !slices.Equal(left, tc.want) {
				t.Errorf("left %q, want %q", left, tc.want)
			}
			got := map[string]time.Duration{}
			for _, del := range c.Deleted {
				name, _ := filepath.Rel(d.Path(), del.Path)
				got[name] = del.UnusedSince.Sub(started)
			}
			if len(got) != len(tc.deleted) {
				t.Errorf("deleted %v, want %v", got, tc.deleted)
			}
			for name, since := range tc.deleted {
				if s, ok := got[name]; !ok || s != since {
					t.Errorf("deleted %v, want %s unused since +%s", got, name, since)
				}
				if !slices.Contains(asked, name) {
					t.Errorf("%s was deleted without asking whether it is in use", name)
				}
			}
			for _, name := range tc.inUse {
				if !slices.Contains(asked, name) {
					t.Errorf("%s (in use, due) was never asked about", name)
				}
			}
		})
	}
}

// TestCleanNoDirectory: a pass before any task created the directory
// does nothing; one over a path that is not a directory reports it.
func TestCleanNoDirectory(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	inUse := func(string) bool { return false }
	c := New(t.TempDir(), "app").Clean(now, now, time.Minute, &sync.Mutex{}, inUse)
	if len(c.Errs) != 0 || len(c.Deleted) != 0 || !c.Next.Equal(now.Add(time.Minute)) {
		t.Errorf("pass over no directory: %+v", c)
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "app"), "not a directory")
	c = New(root, "app").Clean(now, now, time.Minute, &sync.Mutex{}, inUse)
	if len(c.Errs) != 1 || !c.Next.Equal(now.Add(time.Minute)) {
		t.Errorf("pass over a file: %+v, want one error", c)
	}
}

// TestCleanHammer runs cleanup passes without pause while tasks open and
// close their directories under the same lock, as the engine's tracker
// does: a directory is never deleted while its task is open.
func TestCleanHammer(t *testing.T) {
	d := New(t.TempDir(), "app")
	var lock sync.Mutex
	live := map[string]int{}
	inUse := func(name string) bool { return live[name] > 0 }
	past := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

	stop := make(chan struct{})
	cleaned := make(chan []error)
	go func() {
		var errs []error
		for {
			select {
			case <-stop:
				cleaned <- errs
				return
			default:
			}
			errs = append(errs, d.Clean(time.Now(), past, 0, &lock, inUse).Errs...)
		}
	}()

	var wg sync.WaitGroup
	for p := range int32(4) {
		wg.Go(func() {
			td := d.Task("p", p)
			name := filepath.Base(td.Path)
			for i := range 300 {
				lock.Lock()
				live[name]++
				lock.Unlock()
				// Open: the store creates its directory, then works in it.
				if err := os.MkdirAll(td.Path, 0o755); err != nil {
					t.Error(err)
					return
				}
				if err := td.MarkOpen(); err != nil {
					t.Error(err)
				}
				data := filepath.Join(td.Path, "data")
				if err := os.WriteFile(data, []byte{byte(i)}, 0o644); err != nil {
					t.Errorf("write in an open task's directory: %v", err)
				}
				if err := td.MarkClosed(past, map[string]int64{"s": int64(i)}); err != nil {
					t.Errorf("close an open task's directory: %v", err)
				}
				if b, err := os.ReadFile(data); err != nil || len(b) != 1 || b[0] != byte(i) {
					t.Errorf("an open task's directory lost its data: %v", err)
				}
				lock.Lock()
				live[name]--
				lock.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	if errs := <-cleaned; len(errs) != 0 {
		t.Errorf("cleanup errors: %v", errs)
	}
}
