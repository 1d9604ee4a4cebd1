package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
	"github.com/flowstate/flowstate/internal/poll"
)

// browser returns a chromedp context on a fresh headless chromium. It
// skips the test when no chromium is installed, except under CI=true,
// where scripts/deps.sh must have installed one.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium on PATH under CI=true: scripts/deps.sh installs Debian's chromium")
		}
		t.Skip("no chromium on PATH (scripts/deps.sh installs it)")
	}
	// Flags for a root user in a container (CI) and for a test: no
	// sandbox, no GPU, nothing fetched in the background, a fresh profile.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return ctx
}

// screenshot saves the page as a PNG (quality 100; below it is a JPEG) among the test's artifacts (kept
// with go test -artifacts).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
}

// pageEval evaluates a JavaScript expression in the page.
func pageEval[T any](t *testing.T, ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// TestStatusPage loads the status page in headless chromium while task
// counts/0 restores, batch by batch under the test's control: the page
// shows each task's row and the restore bar, the bar moves as batches
// are let through, and the row turns RUNNING once the restore is done;
// then it shows the records processed in its charts.
func TestStatusPage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an engine and a browser")
	}
	ctx := browser(t)
	o := startObserved(t, "obsp")
	defer func() {
		select {
		case <-o.gate:
		default:
			close(o.gate)
		}
	}()
	url := "http://" + o.srv.Addr() + "/?every=200"
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	const row = `document.querySelector('tr.task[data-task="counts/0"]')`
	restored := func() (int, error) {
		v, err := pageEval[string](t, ctx, `(() => { const b = `+row+`?.querySelector('.bar'); return b ? b.dataset.restored : "" })()`)
		if err != nil || v == "" {
			return 0, fmt.Errorf("no restore bar in the row of counts/0 (%v)", err)
		}
		return strconv.Atoi(v)
	}
	var first int
	poll.Until(t, time.Minute, func() error {
		for _, task := range []string{"counts/0", "counts/1"} {
			ok, err := pageEval[bool](t, ctx, `!!document.querySelector('tr.task[data-task="`+task+`"][data-role="active"]')`)
			if err != nil || !ok {
				return fmt.Errorf("no row for task %s (%v)", task, err)
			}
		}
		state, err := pageEval[string](t, ctx, row+`.dataset.state`)
		if err != nil || state != "RESTORING" {
			return fmt.Errorf("counts/0 is %q, want RESTORING (%v)", state, err)
		}
		first, err = restored()
		return err
	})
	screenshot(t, ctx, "restoring.png")

	// Let one more batch through (the restore has about ten): the bar
	// moves, with the rate and the ETA beside it, still restoring.
	select {
	case o.gate <- struct{}{}:
	case <-time.After(30 * time.Second):
		t.Fatal("the restore of counts/0 took no batch")
	}
	poll.Until(t, time.Minute, func() error {
		n, err := restored()
		if err != nil {
			return err
		}
		if n <= first {
			return fmt.Errorf("the restore bar shows %d records restored, no more than the first %d", n, first)
		}
		cells, err := pageEval[[]string](t, ctx, `[`+row+`.dataset.state, `+row+`.querySelector('.eta').textContent]`)
		if err != nil || len(cells) != 2 || cells[0] != "RESTORING" || cells[1] == "" {
			return fmt.Errorf("the row of counts/0 shows state and ETA %q (%v), want RESTORING and an ETA", cells, err)
		}
		return nil
	})

	close(o.gate)
	poll.Until(t, time.Minute, func() error {
		state, err := pageEval[string](t, ctx, row+`.dataset.state`)
		if err != nil || state != "RUNNING" {
			return fmt.Errorf("counts/0 is %q, want RUNNING (%v)", state, err)
		}
		if bar, _ := pageEval[bool](t, ctx, `!!`+row+`.querySelector('.bar')`); bar {
			return fmt.Errorf("counts/0 runs and still shows a restore bar")
		}
		return nil
	})

	// Records flow; the process's row counts them and the throughput chart
	// draws them (a sample every 2 s).
	o.produce(t, 2000)
	poll.Until(t, time.Minute, func() error {
		recs, err := pageEval[string](t, ctx, `document.querySelector('tr.process td:nth-child(5)').textContent`)
		if err != nil || recs != "2,000" {
			return fmt.Errorf("the process row shows %q records, want 2,000 (%v)", recs, err)
		}
		peak, err := pageEval[string](t, ctx, `document.getElementById('chart-throughput').dataset.max || "0"`)
		if n, _ := strconv.ParseFloat(peak, 64); err != nil || n <= 0 {
			return fmt.Errorf("the throughput chart peaks at %s records/s (%v)", peak, err)
		}
		members, err := pageEval[int](t, ctx, `document.querySelectorAll('#members tr.member.self').length`)
		if err != nil || members != 1 {
			return fmt.Errorf("members table marks %d rows as this process, want 1 (%v)", members, err)
		}
		return nil
	})
	screenshot(t, ctx, "running.png")

	// A second endpoint, as another process would serve: the page named
	// with ?addr= shows both processes' tasks, fetched from the browser.
	peer, err := observe.Start(observe.ServerConfig{Addr: "127.0.0.1:0", Engine: o.cfg, Version: version}, o.e)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Stop()
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"&addr="+peer.Addr())); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		for _, addr := range []string{o.srv.Addr(), peer.Addr()} {
			n, err := pageEval[int](t, ctx, `document.querySelectorAll('tr.task[data-addr="`+addr+`"]').length`)
			if err != nil || n != 2 {
				return fmt.Errorf("%d task rows of %s, want 2 (%v)", n, addr, err)
			}
		}
		return nil
	})
	screenshot(t, ctx, "two-processes.png")
}
