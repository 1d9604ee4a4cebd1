package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/internal/plugintest"
)

func TestRunCommandLine(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string // substrings
	}{
		{name: "no args", args: nil, code: 0, stdout: "Commands:"},
		{name: "help", args: []string{"help"}, code: 0, stdout: "dev "},
		{name: "help dev", args: []string{"help", "dev"}, code: 0, stdout: "--exit-when-done"},
		{name: "help unknown", args: []string{"help", "nope"}, code: 2, stderr: `unknown command "nope"`},
		{name: "version", args: []string{"version"}, code: 0, stdout: "flowstate " + version},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{name: "unknown flag", args: []string{"run", "--nope"}, code: 2, stderr: "flowstate run: unknown flag: --nope"},
		{name: "positional argument", args: []string{"run", "x.yaml"}, code: 2, stderr: `unexpected argument "x.yaml"`},
		{name: "-h", args: []string{"dev", "-h"}, code: 0, stderr: "Usage of flowstate dev"},
		{name: "bad feed", args: []string{"dev", "--feed", "sentences"}, code: 2, stderr: `--feed "sentences": want TOPIC=FILE`},
		{name: "missing feed file", args: []string{"dev", "--feed", "s=/nonexistent/x.txt"}, code: 2, stderr: "no such file"},
		{name: "bad config", args: []string{"run", "-c", "/nonexistent/x.yaml"}, code: 1, stderr: "flowstate run: config /nonexistent/x.yaml"},
		{name: "no config", args: []string{"run"}, code: 1, stderr: "\n  application_id: required\n"},
		{name: "broker bad level", args: []string{"broker", "--log-level", "loud"}, code: 2, stderr: `log_level: "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(t.Context(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout does not contain %q:\n%s", tt.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.stderr, stderr.String())
			}
		})
	}
}

// startBrokerCmd runs `flowstate broker` with args until the returned stop
// is called; stop returns its exit code. It returns the broker's address.
func startBrokerCmd(t *testing.T, args ...string) (addr string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		c := run(ctx, append([]string{"broker"}, args...), pw, io.Discard)
		pw.Close()
		code <- c
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("broker printed no address (exit %d): %v", <-code, err)
	}
	go io.Copy(io.Discard, pr)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "broker listening on ")
	if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("broker printed %q", line)
	}
	return addr, func() int {
		cancel()
		return <-code
	}
}

// TestBrokerCommand produces to `flowstate broker`, restarts it on the same
// data directory and reads the record back.
func TestBrokerCommand(t *testing.T) {
	dir := t.TempDir()
	addr, stop := startBrokerCmd(t, "--port", "0", "--data-dir", dir, "--partitions", "3")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	details, err := kadm.NewClient(cl).ListTopics(t.Context(), "t")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details["t"].Partitions); n != 3 {
		t.Errorf("auto-created topic has %d partitions, want 3", n)
	}
	cl.Close()
	if code := stop(); code != 0 {
		t.Fatalf("broker exit code %d", code)
	}

	// Restarted, with topics to create: t exists already, u is new.
	addr, stop = startBrokerCmd(t, "--port", "0", "--data-dir", dir, "--topics", "t,u", "--partitions", "2")
	defer stop()
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	details, err = adm.ListTopics(t.Context(), "t", "u")
	if err != nil {
		t.Fatal(err)
	}
	if nt, nu := len(details["t"].Partitions), len(details["u"].Partitions); nt != 3 || nu != 2 {
		t.Errorf("--topics t,u --partitions 2: t has %d partitions (want 3, as before), u %d (want 2)", nt, nu)
	}
	latest, records, err := readLatest(t.Context(), adm, []string{addr}, "t")
	if err != nil {
		t.Fatal(err)
	}
	if records != 1 || string(latest["k"]) != "v" {
		t.Errorf("after a restart: %d records, latest %q; want 1 record, k=v", records, latest)
	}
}

// testCluster starts an in-memory embedded broker and returns a client of
// it that partitions as --feed does.
func testCluster(t *testing.T) (addr string, cl *kgo.Client, adm *kadm.Client) {
	t.Helper()
	c, addr, err := startBroker(brokerConfig{Partitions: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(feedPartitioner{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return addr, cl, kadm.NewClient(cl)
}

func TestFeedWaitPrint(t *testing.T) {
	addr, cl, adm := testCluster(t)
	log := slog.New(slog.DiscardHandler)
	ctx := t.Context()
	if err := createTopics(ctx, adm, []string{"in", "in"}, 4, log); err != nil {
		t.Fatal(err)
	}

	// Eight lines without a key, one blank, two with keys.
	var lines []string
	for i := range 8 {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	lines = append(lines, "", "user1\tclick", "user1\tview")
	path := writeFile(t, t.TempDir(), "in.txt", strings.Join(lines, "\n")+"\n")
	if err := produceFile(ctx, cl, feed{"in", path}, log); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		total += o.Offset
		if o.Offset < 2 {
			t.Errorf("partition %d has %d records, want the unkeyed lines spread over every partition", o.Partition, o.Offset)
		}
	})
	if total != 10 {
		t.Errorf("%d records produced, want 10", total)
	}

	done, status, err := caughtUp(ctx, adm, "g", []string{"in"}, nil, nil)
	if err != nil || done || !strings.Contains(status, "10 records behind") {
		t.Errorf("caughtUp before any commit = %v, %q, %v; want 10 records behind", done, status, err)
	}
	err = waitCaughtUp(ctx, adm, "g", []string{"in"}, nil, nil, 300*time.Millisecond, log)
	if err == nil || !strings.Contains(err.Error(), "group g did not commit the end offsets of its inputs within 300ms: 10 records behind (in/0 at 0 of") {
		t.Errorf("waitCaughtUp = %v, want a timeout naming the partitions behind", err)
	}
	if _, err := adm.CommitOffsets(ctx, "g", ends.Offsets()); err != nil {
		t.Fatal(err)
	}
	if err := waitCaughtUp(ctx, adm, "g", []string{"in"}, nil, nil, time.Minute, log); err != nil {
		t.Errorf("waitCaughtUp after committing the ends: %v", err)
	}
	done, status, err = caughtUp(ctx, adm, "g", []string{"in", "missing"}, nil, nil)
	if err != nil || done || !strings.Contains(status, "topics not created yet: missing") {
		t.Errorf("caughtUp with a missing topic = %v, %q, %v", done, status, err)
	}

	// The latest value per key; a tombstone deletes its key.
	var recs []*kgo.Record
	for _, kv := range [][2]string{{"a", "1"}, {"b", "1"}, {"a", "2"}, {"c", "1"}, {"a", "3"}} {
		recs = append(recs, &kgo.Record{Topic: "out", Key: []byte(kv[0]), Value: []byte(kv[1])})
	}
	recs = append(recs, &kgo.Record{Topic: "out", Key: []byte("c")})
	if err := createTopics(ctx, adm, []string{"out"}, 4, log); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	latest, records, err := readLatest(ctx, adm, []string{addr}, "out")
	if err != nil {
		t.Fatal(err)
	}
	if records != 6 || len(latest) != 2 || string(latest["a"]) != "3" || string(latest["b"]) != "1" {
		t.Errorf("readLatest = %q, %d records; want a=3 b=1, 6 records", latest, records)
	}
	if _, _, err := readLatest(ctx, adm, []string{addr}, "nope"); err == nil || !strings.Contains(err.Error(), "topic does not exist") {
		t.Errorf("readLatest of a missing topic: %v", err)
	}
}

// recordsRe matches the record count of formatTable's last line.
var recordsRe = regexp.MustCompile(`(keys?, )\d+ records`)

// TestDevWordcount runs `flowstate dev` with the wordcount plugin twice on
// one state directory: the second run finds the first run's broker data and
// stores, so every count doubles.
func TestDevWordcount(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin and runs the engine")
	}
	clearEnv(t)
	dir := t.TempDir()
	module := plugintest.Build(t, "plugins/wordcount")
	cfg := writeFile(t, dir, "wordcount.yaml", `
application_id: wordcount
state_dir: `+filepath.Join(dir, "state")+`
commit_interval: 100ms
pipelines:
  wordcount:
    module: `+module+`
    inputs: [sentences, words]
    outputs: [words, word-counts]
    stores: [counts]
dev: {partitions: 3}
`)
	feed := writeFile(t, dir, "sentences.txt", "The cat sat.\nThe dog sat, too!\n\nA cat, a dog and the bird.\n")
	args := []string{"dev", "-c", cfg, "--feed", "sentences=" + feed, "--print", "word-counts", "--exit-when-done", "--log-level", "warn"}
	for _, want := range []string{`
word-counts:
KEY   VALUE
the       3
a         2
cat       2
dog       2
sat       2
and       1
bird      1
too       1
8 distinct keys, 13 records
`, `
word-counts:
KEY   VALUE
the       6
a         4
cat       4
dog       4
sat       4
and       2
bird      2
too       2
8 distinct keys, 26 records
`} {
		var stdout, stderr strings.Builder
		if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
		}
		// Under at_least_once a rebalance may emit a count again, so the
		// number of records read back can exceed the number of words.
		got := recordsRe.ReplaceAllString(stdout.String(), "$1 records")
		want = recordsRe.ReplaceAllString(strings.TrimPrefix(want, "\n"), "$1 records")
		if got != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), want)
		}
		if !strings.HasPrefix(stderr.String(), "broker listening on 127.0.0.1:") {
			t.Errorf("stderr does not start with the broker's address:\n%s", stderr.String())
		}
	}
}

// TestDevHostilePipeline runs `flowstate dev --exit-when-done` with
// wordcount beside a pipeline whose module traps in _initialize: the counts
// are complete and printed, the hostile pipeline's task is FAILED with an
// error naming the pipeline, the module and the cause, and dev exits
// non-zero.
func TestDevHostilePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin and runs the engine")
	}
	clearEnv(t)
	dir := t.TempDir()
	module := plugintest.Build(t, "plugins/wordcount")
	trap, err := conformance.EmbeddedModule("init_trap")
	if err != nil {
		t.Fatal(err)
	}
	trapPath := filepath.Join(dir, "init_trap.wasm")
	if err := os.WriteFile(trapPath, trap, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, dir, "app.yaml", `
application_id: hostile
state_dir: `+filepath.Join(dir, "state")+`
commit_interval: 100ms
pipelines:
  wordcount:
    module: `+module+`
    inputs: [sentences, words]
    outputs: [words, word-counts]
    stores: [counts]
  trap:
    module: `+trapPath+`
    inputs: [events]
    restart: {initial_backoff: 50ms, max_backoff: 100ms}
dev: {partitions: 2}
`)
	feed := writeFile(t, dir, "sentences.txt", "The cat sat.\nThe dog sat, too!\n")
	events := writeFile(t, dir, "events.txt", "one\ntwo\n")
	args := []string{"dev", "-c", cfg, "--feed", "sentences=" + feed, "--feed", "events=" + events,
		"--print", "word-counts", "--exit-when-done", "--log-level", "warn"}
	var stdout, stderr strings.Builder
	if code := run(t.Context(), args, &stdout, &stderr); code == 0 {
		t.Fatalf("exit code 0 with a FAILED task; stderr:\n%s", stderr.String())
	}
	want := "word-counts:\nKEY  VALUE\nsat      2\nthe      2\ncat      1\ndog      1\ntoo      1\n5 distinct keys, 7 records\n"
	if got := recordsRe.ReplaceAllString(stdout.String(), "$1 records"); got != recordsRe.ReplaceAllString(want, "$1 records") {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), want)
	}
	for _, w := range []string{"level=ERROR", `msg="task FAILED"`, "FAILED (", "pipeline trap partition", "module " + trapPath, "guest trapped"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
		}
	}
}
