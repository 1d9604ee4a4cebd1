package main

import (
	"io"
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/flowstate/flowstate/restore"
)

// restoreBars draws one progress bar per restoring task, with its offsets
// replayed, rate and ETA, on a terminal. Without a terminal the engine's
// periodic "restore progress" log lines say the same; with one, those lines
// are turned off and the log goes through the bars' writer (logWriter), so
// that lines print above the bars instead of through them.
type restoreBars struct {
	p    *mpb.Progress
	logs chan []byte // to p, from logWriter
	done chan struct{}

	logMu  sync.Mutex // held to send on logs and to close it
	closed bool

	mu   sync.Mutex
	bars map[string]*taskBar
}

type taskBar struct {
	bar   *mpb.Bar
	total int64
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newRestoreBars draws on out, which should be a terminal.
func newRestoreBars(out io.Writer) *restoreBars {
	r := &restoreBars{
		p:    mpb.New(mpb.WithOutput(out), mpb.WithWidth(40), mpb.WithAutoRefresh()),
		logs: make(chan []byte, 256),
		done: make(chan struct{}),
		bars: map[string]*taskBar{},
	}
	// Progress.Write waits for the next refresh; a task logging must not,
	// so log lines reach it through a goroutine.
	go func() {
		defer close(r.done)
		for b := range r.logs {
			_, _ = r.p.Write(b)
		}
	}()
	return r
}

// logWriter is the writer for the log while the bars are drawn; after
// close it writes to after.
func (r *restoreBars) logWriter(after io.Writer) io.Writer {
	return &barLogWriter{r: r, after: after}
}

type barLogWriter struct {
	r     *restoreBars
	after io.Writer
}

func (w *barLogWriter) Write(b []byte) (int, error) {
	w.r.logMu.Lock()
	defer w.r.logMu.Unlock()
	if w.r.closed {
		return w.after.Write(b)
	}
	w.r.logs <- append([]byte(nil), b...) // the handler reuses b
	return len(b), nil
}

// listener returns the restore listener that drives the bars, calling next
// after each event.
func (r *restoreBars) listener(next restore.Listener) restore.Listener {
	return restore.Listener{
		Begin: func(b restore.BeginInfo) {
			if b.Remaining > 0 {
				r.begin(b.Task, b.Remaining)
			}
			if next.Begin != nil {
				next.Begin(b)
			}
		},
		Batch: func(b restore.BatchInfo) {
			r.mu.Lock()
			if tb := r.bars[b.Task]; tb != nil {
				tb.bar.SetCurrent(tb.total - b.Remaining)
			}
			r.mu.Unlock()
			if next.Batch != nil {
				next.Batch(b)
			}
		},
		End: func(e restore.EndInfo) {
			r.mu.Lock()
			if tb := r.bars[e.Task]; tb != nil {
				if e.Err != nil {
					tb.bar.Abort(false) // an interrupted restore stays on screen
				} else {
					tb.bar.SetCurrent(tb.total) // completes and removes it
				}
				delete(r.bars, e.Task)
			}
			r.mu.Unlock()
			if next.End != nil {
				next.End(e)
			}
		},
	}
}

func (r *restoreBars) begin(task string, total int64) {
	bar := r.p.AddBar(total,
		mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(
			decor.Name("restore "+task, decor.WC{C: decor.DindentRight | decor.DextraSpace}),
			decor.CountersNoUnit("%d / %d", decor.WCSyncWidth),
		),
		mpb.AppendDecorators(
			decor.AverageSpeed(0, "%.0f rec/s", decor.WCSyncSpace),
			decor.Name(" eta "),
			decor.AverageETA(decor.ET_STYLE_GO),
		),
	)
	r.mu.Lock()
	if old := r.bars[task]; old != nil {
		old.bar.Abort(true)
	}
	r.bars[task] = &taskBar{bar: bar, total: total}
	r.mu.Unlock()
}

// close removes the bars left and stops drawing.
func (r *restoreBars) close() {
	r.mu.Lock()
	for task, tb := range r.bars {
		tb.bar.Abort(false)
		delete(r.bars, task)
	}
	r.mu.Unlock()
	r.logMu.Lock()
	r.closed = true
	close(r.logs)
	r.logMu.Unlock()
	<-r.done
	r.p.Wait()
}
