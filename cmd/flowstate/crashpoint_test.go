package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashPointCase is a named crash point (internal/crashpoint) the suite
// kills the host at, and the hit that kills: a later hit lets the run
// first make progress.
type crashPointCase struct {
	point string
	at    int
}

// crashPointCases are the points reached under guarantee. Under
// at-least-once each of the four tasks reaches a commit point on its own
// clock (5 times a second) once it runs: the 20th hit is about a second in.
// Under exactly-once the engine reaches one once per transaction for all
// tasks, from before they run (the first transactions are empty): the 15th
// is about 3 s after the poll loop starts, 1 to 2 s after the tasks run.
func crashPointCases(guarantee string) []crashPointCase {
	if guarantee == "exactly_once" {
		return []crashPointCase{{"commit.produced", 15}, {"commit.ended", 15}, {"restore.sst-chunk", 1}}
	}
	return []crashPointCase{{"commit.produced", 20}, {"commit.stored", 20}, {"restore.sst-chunk", 1}}
}

// testCrashPoint kills the host at pc, restarts it and checks what the
// point must show: after the restart no input is lost, under exactly_once
// none is applied twice (outputs read_committed, and the stores), and
// each task replays at most one commit's worth of changelog. At
// commit.ended the restart must replay the committed transaction (at least
// one record, which proves the kill landed in the window), at
// commit.produced under exactly_once nothing (the open transaction is
// aborted), at commit.produced under at-least-once the acknowledged
// commit. Under at_least_once an input may be applied twice, never more,
// and a partition's duplicates span at most one commit of the killed run.
// At restore.sst-chunk a store rebuilt from nothing dies between two SST
// chunks; the restart's restore must finish on the batch path with the
// stores complete and correct. It returns the point's line of the summary.
func testCrashPoint(t *testing.T, bin, guest, guarantee string, pc crashPointCase) string {
	exactlyOnce := guarantee == "exactly_once"
	sst := pc.point == "restore.sst-chunk"
	// Debug logs carry each commit's records and changes.
	extra := "log_level: debug\n"
	if sst {
		// Chunks of 1 KiB (the least allowed): the restore of a store
		// spans many of them.
		extra += "restore:\n  sst_chunk_bytes: 1024\n"
	}
	env := newCrashEnv(t, bin, guest, guarantee, extra)
	rng := rand.New(rand.NewPCG(*crashSeed, 7))
	spec := fmt.Sprintf("%s@%d", pc.point, pc.at)
	killedLog := filepath.Join(env.dir, "killed.log")

	var in *crashInput
	if sst {
		// A first run builds the stores and their changelogs and stops
		// cleanly; its stores are deleted, so that the killed run
		// rebuilds them from nothing.
		in = newCrashInput(8000, crashKeys, rng)
		if err := in.feed(t.Context(), env.cl, 0); err != nil {
			t.Fatal(err)
		}
		first := filepath.Join(env.dir, "first.log")
		p := startHost(t, bin, env.cfg, first)
		waitCommitted(t, env.adm, "sums", "in", in.ends)
		stopHost(t, p, first)
		if err := os.RemoveAll(filepath.Join(env.dir, "state", "sums")); err != nil {
			t.Fatal(err)
		}
		p = startHost(t, bin, env.cfg, killedLog, "--crash-point", spec)
		waitKilledAt(t, p, killedLog, pc.point)
	} else {
		// The input flows while the host runs, so that the commit that
		// dies holds records.
		in = newCrashInput(400_000, crashKeys, rng)
		stop := make(chan struct{})
		fed := make(chan error, 1)
		go func() { fed <- in.feedUntil(t.Context(), env.cl, 100, 25*time.Millisecond, stop) }()
		p := startHost(t, bin, env.cfg, killedLog, "--crash-point", spec)
		waitKilledAt(t, p, killedLog, pc.point)
		close(stop)
		if err := <-fed; err != nil {
			t.Fatal(err)
		}
	}

	// The restart, unarmed, processes the rest and stops cleanly.
	finalLog := filepath.Join(env.dir, "final.log")
	p := startHost(t, bin, env.cfg, finalLog)
	waitUntil(t, "every task of the restart restored", func() bool {
		return len(readRestores(t, finalLog)) == crashPartitions
	}, func() string { return tail(finalLog) })
	if sst {
		// The restored stores go on: more input after the restore.
		more := newCrashInput(400, crashKeys, rng)
		if err := more.feed(t.Context(), env.cl, 0); err != nil {
			t.Fatal(err)
		}
		in.add(more)
	}
	waitCommitted(t, env.adm, "sums", "in", in.ends)
	stopHost(t, p, finalLog)

	restores := readRestores(t, finalLog)
	var replayed int64
	for _, r := range restores {
		replayed = max(replayed, r.records)
	}
	if len(restores) != crashPartitions {
		t.Errorf("the restart logged %d task restores, want %d: %v", len(restores), crashPartitions, restores)
	}
	bound := int64(in.maxKeysPerPartition())
	if !sst && replayed > bound {
		t.Errorf("a task replayed %d changelog records after the kill; one commit's worth is at most %d (the partition's keys)", replayed, bound)
	}
	if sst {
		// A store the kill left with ingested chunks is not empty: the
		// restart restores it on the batch path, over what is there. (It
		// replays from the start: the offsets written after each chunk
		// go without the WAL, so they do not survive the kill.)
		resumed := false
		for _, r := range restores {
			resumed = resumed || (r.path == "batch" && r.records > 0)
		}
		if !resumed {
			t.Errorf("no restore after the kill found a store with ingested chunks (restart %v): the kill did not land between two SST chunks", restores)
		}
	}
	switch {
	case pc.point == "commit.ended" && replayed < 1:
		t.Errorf("the restart replayed no changelog record: the kill did not land between the transaction's end and the RocksDB batches")
	case pc.point == "commit.produced" && exactlyOnce && replayed > 0:
		t.Errorf("the restart replayed %d changelog records of a transaction that was never committed", replayed)
	case pc.point == "commit.produced" && !exactlyOnce && replayed < 1:
		t.Errorf("the restart replayed no changelog record: the kill did not land between the acknowledged changelog and the RocksDB batch")
	}

	// Under at_least_once the inputs a partition's task processed again
	// after the kill lie in one stretch: the commit that died, or the
	// records processed since the last commit. Its length is at most the
	// largest commit the killed run logged.
	seen := readOutputs(t, env.cl, env.adm)
	lost, duplicated, tooMany := 0, 0, 0
	commitRecords := largestCommit(t, killedLog)
	for p, n := range in.ends {
		lo, hi := int64(-1), int64(-1)
		for o := range n {
			c := seen[[2]int64{int64(p), o}]
			if c == 0 {
				lost++
				continue
			}
			duplicated += c - 1
			if c > 2 {
				tooMany++
			}
			if c > 1 {
				if lo < 0 {
					lo = o
				}
				hi = o
			}
		}
		if lo >= 0 && hi-lo+1 > commitRecords {
			t.Errorf("partition %d: inputs %d to %d were applied twice, more than the largest commit of the killed run (%d records)", p, lo, hi, commitRecords)
		}
	}
	if tooMany > 0 {
		t.Errorf("%d input records applied more than twice after one kill", tooMany)
	}
	if lost > 0 {
		t.Errorf("%d input records lost", lost)
	}
	if (exactlyOnce || sst) && duplicated > 0 {
		t.Errorf("%d input records applied more than once", duplicated)
	}
	stores := readSums(t, filepath.Join(env.dir, "state", "sums"))
	for k, want := range in.sums {
		if got := stores[k]; got < want || ((exactlyOnce || sst) && got != want) {
			t.Errorf("store sum of %s = %d, want %d", k, got, want)
		}
	}
	return fmt.Sprintf("%-18s %-14s %-8d %-6d %-10d %d\n", pc.point, guarantee, len(in.recs), lost, duplicated, replayed)
}

func crashPointHeader() string {
	return fmt.Sprintf("%-18s %-14s %-8s %-6s %-10s %s\n", "crash point", "guarantee", "records", "lost", "duplicated", "max records replayed by one task after the kill")
}

// waitKilledAt waits until p ends and checks that it died of SIGKILL at
// crash point name, and nowhere else.
func waitKilledAt(t *testing.T, p *exec.Cmd, log, name string) {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- p.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the host did not reach crash point %s within 2 minutes:\n%s", name, tail(log))
	}
	ws, ok := p.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the host ended with %v, want SIGKILL at crash point %s:\n%s", err, name, tail(log))
	}
	b, rerr := os.ReadFile(log)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if n := strings.Count(string(b), "crashpoint: "); n != 1 || !strings.Contains(string(b), "crashpoint: "+name+"\n") {
		t.Fatalf("the host's log has %d crash point lines, want one for %s:\n%s", n, name, tail(log))
	}
}

// stopHost stops p with SIGTERM and checks that it stopped cleanly.
func stopHost(t *testing.T, p *exec.Cmd, log string) {
	t.Helper()
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("host: %v\n%s", err, tail(log))
	}
}

// taskRestore is one "restore done" line.
type taskRestore struct {
	records int64
	path    string // "" when there was nothing to replay
}

var restoreDonePath = regexp.MustCompile(`msg="restore done".*task=(\S+) records=(\d+)(?:.* path=(\S+))?`)

// readRestores returns each task's restore in a run's log.
func readRestores(t *testing.T, log string) map[string]taskRestore {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]taskRestore{}
	for _, m := range restoreDonePath.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		out[m[1]] = taskRestore{records: n, path: m[3]}
	}
	return out
}

var commitLine = regexp.MustCompile(`msg=commit .*records=(\d+)`)

// largestCommit returns the most input records one commit of a run's log
// (at debug level) held.
func largestCommit(t *testing.T, log string) int64 {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var most int64
	for _, m := range commitLine.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		most = max(most, n)
	}
	return most
}
