package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/internal/plugintest"
	"github.com/flowstate/flowstate/internal/poll"
	"github.com/flowstate/flowstate/state"
)

var (
	crashKills   = flag.Int("crash.kills", 3, "SIGKILLs in TestCrash")
	crashRecords = flag.Int("crash.records", 20_000, "input records of TestCrash")
	crashSeed    = flag.Uint64("crash.seed", 1, "seed of TestCrash's kill moments")
	// crashGuarantees are the processing guarantees TestCrash runs under.
	crashGuarantees = flag.String("crash.guarantees", "at_least_once,exactly_once", "comma-separated guarantees of TestCrash")
)

const (
	crashPartitions = 4
	crashKeys       = 1000
)

// TestCrash is the crash suite: it runs `flowstate broker` and `flowstate
// run` as processes, feeds a known input while it SIGKILLs the host at
// seeded random moments (while it restores, processes or commits) and
// restarts it, then checks, read_committed, that no input's effect was lost
// (and, under exactly_once, none applied twice, in the output and in the
// stores) and that no restart replayed more than one commit's worth of
// changelog per partition. Random kills almost never land inside a commit,
// so the subtests under points kill the host at each named crash point
// (internal/crashpoint) and check what that point must show.
//
// `make crash KILLS=50` runs a long version.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash suite: skipped with -short")
	}
	bin := buildFlowstate(t)
	guest := plugintest.Build(t, "cmd/flowstate/testdata/sums")
	guarantees := strings.Split(*crashGuarantees, ",")
	for _, g := range guarantees {
		t.Run(g, func(t *testing.T) { testCrash(t, bin, guest, g) })
	}
	var lines []string
	t.Run("points", func(t *testing.T) {
		for _, g := range guarantees {
			for _, pc := range crashPointCases(g) {
				t.Run(g+"/"+pc.point, func(t *testing.T) {
					lines = append(lines, testCrashPoint(t, bin, guest, g, pc))
				})
			}
		}
	})
	t.Logf("crash points:\n%s%s", crashPointHeader(), strings.Join(lines, ""))
}

// crashEnv is one crash run's broker, config and clients.
type crashEnv struct {
	dir, cfg string
	cl       *kgo.Client // read_committed
	adm      *kadm.Client
}

// newCrashEnv starts a broker with topics in and out and writes the host's
// config, with extra appended to it.
func newCrashEnv(t *testing.T, bin, guest, guarantee, extra string) *crashEnv {
	t.Helper()
	addr := startBrokerProcess(t, bin)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "sums.yaml", fmt.Sprintf(`application_id: sums
brokers: [%s]
state_dir: %s
processing_guarantee: %s
commit_interval: 200ms
instance_id: crash-1
session_timeout: 6s
pipelines:
  sums:
    module: %s
    inputs: [in]
    outputs: [out]
    stores: [sums]
`, addr, filepath.Join(dir, "state"), guarantee, guest)+extra)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopics(t.Context(), crashPartitions, 1, nil, "in", "out"); err != nil {
		t.Fatal(err)
	}
	return &crashEnv{dir: dir, cfg: cfg, cl: cl, adm: adm}
}

func testCrash(t *testing.T, bin, guest, guarantee string) {
	exactlyOnce := guarantee == "exactly_once"
	env := newCrashEnv(t, bin, guest, guarantee, "")
	dir, cfg, cl, adm := env.dir, env.cfg, env.cl, env.adm

	// Feed the input over the whole run, so kills land during processing.
	rng := rand.New(rand.NewPCG(*crashSeed, 99))
	in := newCrashInput(*crashRecords, crashKeys, rng)
	fed := make(chan error, 1)
	go func() { fed <- in.feed(t.Context(), cl, max(6*time.Second, time.Duration(*crashKills)*time.Second)) }()

	sum := crashSummary{kills: *crashKills, records: *crashRecords}
	for i := range *crashKills {
		// A kill moment is a seeded delay after the host reached a phase.
		phase, wait := "task RUNNING", time.Duration(50+rng.IntN(1500))*time.Millisecond
		if rng.IntN(3) == 0 {
			phase, wait = "task RESTORING", time.Duration(rng.IntN(30))*time.Millisecond
		}
		log := filepath.Join(dir, fmt.Sprintf("run-%d.log", i))
		p := startHost(t, bin, cfg, log)
		waitLog(t, log, phase)
		time.Sleep(wait) // the kill moment is the point of the test, not a wait for a condition
		if err := p.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.Wait()
		sum.observe(t, log)
		t.Logf("run %d: killed %s after %q", i, wait, phase)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}

	// A last run processes the rest and stops cleanly.
	log := filepath.Join(dir, "final.log")
	p := startHost(t, bin, cfg, log)
	waitLog(t, log, "task RUNNING")
	waitCommitted(t, adm, "sums", "in", in.ends)
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("final run: %v\n%s", err, tail(log))
	}
	sum.observe(t, log)

	// Every input's effect is in the output at least once.
	seen := readOutputs(t, cl, adm)
	for p, n := range in.ends {
		for o := range n {
			c := seen[[2]int64{int64(p), o}]
			if c == 0 {
				sum.lost++
			} else {
				sum.duplicated += c - 1
			}
		}
	}
	// The stores hold the expected sums: exactly under exactly-once, at
	// least under at-least-once (which may add an effect twice, never drop
	// one).
	stores := readSums(t, filepath.Join(dir, "state", "sums"))
	for k, want := range in.sums {
		if got := stores[k]; got < want || (exactlyOnce && got != want) {
			t.Errorf("store sum of %s = %d, want %d", k, got, want)
		}
	}
	t.Logf("crash suite (%s, seed %d):\n%s", guarantee, *crashSeed, sum.table())
	if sum.lost > 0 {
		t.Errorf("%d input records lost", sum.lost)
	}
	if exactlyOnce && sum.duplicated > 0 {
		t.Errorf("%d input records applied more than once", sum.duplicated)
	}
	bound := in.maxKeysPerPartition()
	if sum.maxReplayed > int64(bound) {
		t.Errorf("a restart replayed %d changelog records for one task; one commit's worth is at most %d (the partition's keys)", sum.maxReplayed, bound)
	}
	if sum.restores == 0 {
		t.Error("no restore was reported")
	}
}

// crashInput is the suite's input: records with keys k0, k1, ... and small
// values, and what they must add up to.
type crashInput struct {
	recs []*kgo.Record
	sums map[string]int64
	ends map[int32]int64 // partition -> end offset once fed
	keys map[int32]map[string]bool
}

// newCrashInput returns n records over keys keys.
func newCrashInput(n, keys int, rng *rand.Rand) *crashInput {
	in := &crashInput{sums: map[string]int64{}, ends: map[int32]int64{}, keys: map[int32]map[string]bool{}}
	for range n {
		k := "k" + strconv.Itoa(rng.IntN(keys))
		v := int64(1 + rng.IntN(9))
		in.recs = append(in.recs, &kgo.Record{Topic: "in", Key: []byte(k), Value: []byte(strconv.FormatInt(v, 10))})
	}
	return in
}

// feed produces the records spread over about d.
func (in *crashInput) feed(ctx context.Context, cl *kgo.Client, d time.Duration) error {
	const chunks = 50
	per := (len(in.recs) + chunks - 1) / chunks
	for i := 0; i < len(in.recs); i += per {
		batch := in.recs[i:min(i+per, len(in.recs))]
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return err
		}
		time.Sleep(d / chunks) // pacing the input, not waiting for a condition
	}
	in.fed(len(in.recs))
	return nil
}

// feedUntil produces the records in chunks of per every d until stop is
// closed (or the records run out), then keeps only the records it fed.
func (in *crashInput) feedUntil(ctx context.Context, cl *kgo.Client, per int, d time.Duration, stop <-chan struct{}) error {
	tick := time.NewTicker(d)
	defer tick.Stop()
	n := 0
	for n < len(in.recs) {
		batch := in.recs[n:min(n+per, len(in.recs))]
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return err
		}
		n += len(batch)
		select {
		case <-stop:
			in.recs = in.recs[:n]
			in.fed(n)
			return nil
		case <-tick.C: // pacing the input, not waiting for a condition
		}
	}
	return fmt.Errorf("the input ran out after %d records before the feed was stopped", n)
}

// fed records what the first n records, produced, add up to and where
// each partition ends.
func (in *crashInput) fed(n int) {
	for _, r := range in.recs[:n] {
		v, _ := strconv.ParseInt(string(r.Value), 10, 64)
		in.sums[string(r.Key)] += v
		if r.Offset+1 > in.ends[r.Partition] {
			in.ends[r.Partition] = r.Offset + 1
		}
		if in.keys[r.Partition] == nil {
			in.keys[r.Partition] = map[string]bool{}
		}
		in.keys[r.Partition][string(r.Key)] = true
	}
}

// add adds the records of more, fed after in's.
func (in *crashInput) add(more *crashInput) {
	in.recs = append(in.recs, more.recs...)
	for k, v := range more.sums {
		in.sums[k] += v
	}
	for p, e := range more.ends {
		in.ends[p] = max(in.ends[p], e)
	}
	for p, ks := range more.keys {
		if in.keys[p] == nil {
			in.keys[p] = map[string]bool{}
		}
		for k := range ks {
			in.keys[p][k] = true
		}
	}
}

func (in *crashInput) maxKeysPerPartition() int {
	m := 0
	for _, ks := range in.keys {
		m = max(m, len(ks))
	}
	return m
}

// crashSummary is what the suite prints.
type crashSummary struct {
	kills, records    int
	lost, duplicated  int
	restores          int
	maxReplayed       int64
	replayedAfterKill []int64
}

var restoreDone = regexp.MustCompile(`msg="restore done".*task=(\S+) records=(\d+)`)

// observe reads a run's log for the records each task's restore replayed.
func (s *crashSummary) observe(t *testing.T, log string) {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var most int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := restoreDone.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		s.restores++
		most = max(most, n)
	}
	s.maxReplayed = max(s.maxReplayed, most)
	s.replayedAfterKill = append(s.replayedAfterKill, most)
}

func (s *crashSummary) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %-8s %-6s %-10s %-9s %s\n", "kills", "records", "lost", "duplicated", "restores", "max records replayed by one task after a kill")
	fmt.Fprintf(&b, "%-8d %-8d %-6d %-10d %-9d %d\n", s.kills, s.records, s.lost, s.duplicated, s.restores, s.maxReplayed)
	return b.String()
}

// flowstateBin is the binary under test, built once per test binary.
var flowstateBin struct {
	sync.Mutex
	path string
}

// buildFlowstate builds the binary under test, once for the suites that
// run it: to one fixed path, like plugintest.Build, each test binary
// building to its own file and renaming it into place.
func buildFlowstate(t *testing.T) string {
	t.Helper()
	flowstateBin.Lock()
	defer flowstateBin.Unlock()
	if flowstateBin.path != "" {
		return flowstateBin.path
	}
	dir := filepath.Join(os.TempDir(), "flowstate-test-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "flowstate")
	tmp := bin + "." + strconv.Itoa(os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "./cmd/flowstate")
	cmd.Dir = plugintest.Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build flowstate: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	flowstateBin.path = bin
	return bin
}

// startBrokerProcess runs `flowstate broker` as a process for the test.
func startBrokerProcess(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin, "broker", "--port", "0", "--data-dir", "")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("broker printed no address: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "broker listening on ")
	if !ok {
		t.Fatalf("broker printed %q", line)
	}
	return addr
}

// startHost starts `flowstate run` with its log in log, and flags after
// the config's.
func startHost(t *testing.T, bin, cfg, log string, flags ...string) *exec.Cmd {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command(bin, append([]string{"run", "-c", cfg}, flags...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// waitLog polls log until a line contains s.
func waitLog(t *testing.T, log, s string) {
	t.Helper()
	poll.Until(t, time.Minute, func() error {
		if b, err := os.ReadFile(log); err != nil || !strings.Contains(string(b), s) {
			return fmt.Errorf("no %q in the host's log:\n%s", s, tail(log))
		}
		return nil
	})
}

// waitCommitted polls until group has committed ends for topic.
func waitCommitted(t *testing.T, adm *kadm.Client, group, topic string, ends map[int32]int64) {
	t.Helper()
	poll.Until(t, 2*time.Minute, func() error {
		committed, err := adm.FetchOffsets(t.Context(), group)
		done := err == nil
		for p, end := range ends {
			if o, ok := committed.Lookup(topic, p); !ok || o.At < end {
				done = false
			}
		}
		if !done {
			return fmt.Errorf("group %s did not commit the input's end (%v)", group, err)
		}
		return nil
	})
}

// readOutputs counts the outputs of each input (partition, offset).
func readOutputs(t *testing.T, cl *kgo.Client, adm *kadm.Client) map[[2]int64]int {
	t.Helper()
	ends, err := adm.ListCommittedOffsets(t.Context(), "out")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	rd, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	seen := map[[2]int64]int{}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for len(want) > 0 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read out: %v (left %v)", ctx.Err(), want)
		}
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				if r.Offset >= want[r.Partition] {
					continue
				}
				parts := strings.SplitN(string(r.Value), ":", 3)
				p, _ := strconv.ParseInt(parts[0], 10, 64)
				o, _ := strconv.ParseInt(parts[1], 10, 64)
				seen[[2]int64{p, o}]++
			}
			// A transaction marker may end the partition; it is never
			// returned, but the fetch's last stable offset passes it.
			if n := len(fp.Records); fp.LastStableOffset >= want[fp.Partition] || (n > 0 && fp.Records[n-1].Offset+1 >= want[fp.Partition]) {
				delete(want, fp.Partition)
			}
		})
	}
	return seen
}

// readSums reads the sums store of every task under dir.
func readSums(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	tasks, _ := filepath.Glob(filepath.Join(dir, "sums-*"))
	if len(tasks) == 0 {
		t.Fatalf("no task stores under %s", dir)
	}
	out := map[string]int64{}
	for _, td := range tasks {
		db, err := state.Open(state.Config{Dir: td, Stores: []string{"sums"}})
		if err != nil {
			t.Fatal(err)
		}
		it, err := db.Range(0, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			var n int64
			for _, b := range it.Value() {
				n = n<<8 | int64(b)
			}
			out[string(it.Key())] = n
		}
		it.Close()
		db.Close()
	}
	return out
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
