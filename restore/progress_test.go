package restore

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestProgressLog checks the "restore progress" lines of a restore of 1000
// offsets that replays 250 in each 5 s interval. The line writer waits on
// a ticker only, so it runs in a synctest bubble, where sleeping advances
// the fake clock at once and every tick is a line.
func TestProgressLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer // written by the line writer, read after close
		log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		p := startProgressLog(log, "app/0", 1000, time.Now(), 5*time.Second)
		// interval lets one interval pass; the tick at its end and the
		// sleep end at the same fake instant, and Wait lets the line be
		// written before the next batch.
		interval := func() {
			time.Sleep(5 * time.Second)
			synctest.Wait()
		}
		interval() // nothing replayed yet
		for restored := int64(250); restored <= 750; restored += 250 {
			p.batch(BatchInfo{Restored: restored, Remaining: 1000 - restored})
			interval()
		}
		p.close()
		want := []string{
			"level=INFO msg=\"restore progress\" task=app/0 restored=0 remaining=1000 rate=0 eta=unknown",
			"level=INFO msg=\"restore progress\" task=app/0 restored=250 remaining=750 rate=25 eta=30s",
			"level=INFO msg=\"restore progress\" task=app/0 restored=500 remaining=500 rate=33 eta=15s",
			"level=INFO msg=\"restore progress\" task=app/0 restored=750 remaining=250 rate=38 eta=7s",
		}
		if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
