package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/plugintest"
)

// The scale-out suite runs several `flowstate run` processes of one
// application over a `flowstate broker` process on a loopback port, and
// watches them as an operator would: through their logs and their /status
// endpoints. The pipeline is the crash suite's sums guest, whose output
// names the input record it came from, so that lost input shows.

const (
	// fleetParts is the partition count of the suite's topics: 6 tasks,
	// which spread over 2, 3 and 4 processes.
	fleetParts = 6
	// fleetKeys is the key space of the input: most records have a key of
	// their own, so that a changelog is about as long as its input.
	fleetKeys = 1_000_000
)

// TestScaleOut is the suite; each subtest has its own broker.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("scale-out suite: skipped with -short")
	}
	bin := buildFlowstate(t)
	guest := plugintest.Build(t, "cmd/flowstate/testdata/sums")
	t.Run("failover", func(t *testing.T) { testFailover(t, newFleet(t, bin, guest), "at_least_once") })
	t.Run("failover-eos", func(t *testing.T) { testFailover(t, newFleet(t, bin, guest), "exactly_once") })
	t.Run("join", func(t *testing.T) { testJoin(t, newFleet(t, bin, guest)) })
	t.Run("static", func(t *testing.T) { testStaticRestart(t, newFleet(t, bin, guest)) })
	t.Run("racks", func(t *testing.T) { testRacks(t, newFleet(t, bin, guest)) })
}

// testFailover: three processes, one standby of every task. SIGKILL one
// while input flows: its tasks become active where their standbys were
// (also two on one process), restore only the standby's small lag, and no
// input is lost; under exactly_once, none is applied twice either (the
// standbys read the changelogs read_committed).
func testFailover(t *testing.T, f *fleet, guarantee string) {
	const bound = 500 // records one taken-over task may restore
	// A process without a copy is not caught up (acceptable_recovery_lag
	// below the changelogs' length): a task goes to its standby, and
	// balanced moves wait for warm-ups, which probing rebalances follow.
	shared := "num_standby_replicas: 1\nsession_timeout: 6s\nacceptable_recovery_lag: 100\nprobing_rebalance_interval: 1s\n" +
		"processing_guarantee: " + guarantee + "\n"
	in := f.preload(30_000)
	ms := []*member{f.start("a", shared), f.start("b", shared), f.start("c", shared)}
	waitRoles(t, "each process runs 2 tasks and 2 standbys", ms, func(d statusDoc) bool {
		return len(d.running(engine.RoleActive)) == 2 && len(d.running(engine.RoleStandby)) == 2 && d.maxLag() == 0
	})
	fed := f.feed(in, 12_000, 12*time.Second)

	time.Sleep(3 * time.Second) // into the feed: the kill lands while records flow
	victim, rest := ms[0], ms[1:]
	moved := victim.mustStatus(t).running(engine.RoleActive)
	standbyOn := map[string]*member{}
	from := map[*member]int64{}
	for _, m := range rest {
		for _, task := range m.mustStatus(t).running(engine.RoleStandby) {
			standbyOn[task] = m
		}
	}
	victim.kill(t)
	killed := time.Now()
	for _, m := range rest {
		from[m] = m.logSize(t)
	}
	// The moved tasks go where their standbys are, even beyond a share (a
	// balanced move waits for a warm-up, which may follow at once).
	waitUntil(t, "the victim's tasks ran where their standbys were", func() bool {
		n := 0
		for _, task := range moved {
			if m := standbyOn[task]; m != nil && m.ran(t, from[m], task) {
				n++
			}
		}
		return n == len(moved)
	}, func() string {
		var b strings.Builder
		for _, task := range moved {
			if m := standbyOn[task]; m != nil {
				fmt.Fprintf(&b, "%s: standby was on %s, which ran it since the kill: %v\n", task, m.name, m.ran(t, from[m], task))
			}
		}
		return b.String()
	})
	took := time.Since(killed)

	ends := f.endOffsets(t, "fo-sums-changelog")
	var most int64
	for _, task := range moved {
		m := standbyOn[task]
		if m == nil {
			t.Errorf("task %s had no standby before the kill", task)
			continue
		}
		n, ok := m.restored(t, from[m])[task]
		if !ok {
			t.Errorf("%s logged no restore of %s after the kill", m.name, task)
			continue
		}
		p, _ := strconv.Atoi(task[strings.IndexByte(task, '/')+1:])
		t.Logf("%s took over %s: restored %d records of a changelog of %d", m.name, task, n, ends[int32(p)])
		most = max(most, n)
	}
	if most > bound {
		t.Errorf("a taken-over task restored %d records, want at most %d: its standby was behind", most, bound)
	}
	t.Logf("failover: %d tasks moved to their standbys in %s (session timeout 6s), at most %d records restored by one", len(moved), took.Round(10*time.Millisecond), most)

	<-fed
	seen := f.checkNoLoss(t, in)
	if guarantee == "exactly_once" {
		twice := 0
		for _, n := range seen {
			twice += max(n-1, 0)
		}
		if twice > 0 {
			t.Errorf("%d input records have more than one output under exactly_once", twice)
		}
	}
}

// testJoin: a fourth process joins three whose stores are large and caught
// up. It gets warm-ups first; a task moves to it only once its warm-up is
// within acceptable_recovery_lag, and every partition keeps producing
// output meanwhile.
func testJoin(t *testing.T, f *fleet) {
	const (
		lag     = 200  // acceptable_recovery_lag
		bound   = 1000 // records a moved task may restore: the lag and what arrives until it moves
		maxStop = 5 * time.Second
	)
	shared := fmt.Sprintf("max_warmup_replicas: 2\nacceptable_recovery_lag: %d\nprobing_rebalance_interval: 1s\nsession_timeout: 6s\n", lag)
	in := f.preload(60_000)
	ms := []*member{f.start("a", shared), f.start("b", shared), f.start("c", shared)}
	waitRoles(t, "each process runs 2 tasks", ms, func(d statusDoc) bool { return len(d.running(engine.RoleActive)) == 2 })
	waitCommitted(t, f.adm, "fo", "in", in.ends)

	w := watchOutput(f)
	fed := f.feed(in, 16_000, 16*time.Second)
	d := f.start("d", shared)
	from := d.logSize(t)
	warm := map[string]time.Time{}   // task -> first seen as a warm-up on d
	active := map[string]time.Time{} // task -> first seen active on d
	var last statusDoc
	waitUntil(t, "d runs tasks and warms none", func() bool {
		doc, err := d.status()
		if err != nil {
			return false
		}
		last = doc
		now := time.Now()
		for _, task := range doc.running(engine.RoleWarmup) {
			if _, ok := warm[task]; !ok {
				warm[task] = now
			}
		}
		for _, task := range doc.running(engine.RoleActive) {
			if _, ok := active[task]; !ok {
				active[task] = now
			}
		}
		return len(active) > 0 && len(doc.running(engine.RoleWarmup)) == 0
	}, func() string { return fmt.Sprintf("%+v", last.Tasks) })

	ends := f.endOffsets(t, "fo-sums-changelog")
	restored := d.restored(t, from)
	for task, at := range active {
		w, ok := warm[task]
		if !ok || w.After(at) {
			t.Errorf("task %s became active on the new process without a warm-up first", task)
		}
		p, _ := strconv.Atoi(task[strings.IndexByte(task, '/')+1:])
		n := restored[task]
		t.Logf("%s: warm-up for %s, then active, restoring %d records of a changelog of %d", d.name, at.Sub(w).Round(10*time.Millisecond), n, ends[int32(p)])
		if n > bound {
			t.Errorf("task %s restored %d records on the new process, want at most %d: it moved before its warm-up caught up", task, n, bound)
		}
	}

	<-fed
	f.checkNoLoss(t, in)
	gaps := w.stop()
	worst := slices.Max(gaps)
	t.Logf("output kept flowing: longest pause of a partition %s (per partition %v)", worst.Round(10*time.Millisecond), roundAll(gaps))
	if worst > maxStop {
		t.Errorf("a partition produced no output for %s while input flowed, want at most %s", worst, maxStop)
	}
}

// testStaticRestart: static members stop cleanly and restart within the
// session timeout, one after the other, the group's leader last: the
// group's generation stays, each runs the same tasks again, and restores
// nothing.
func testStaticRestart(t *testing.T, f *fleet) {
	shared := "session_timeout: 30s\n"
	in := f.preload(6_000)
	a := f.start("a", shared+"instance_id: fo-a\n")
	b := f.start("b", shared+"instance_id: fo-b\n")
	waitRoles(t, "each process runs 3 tasks", []*member{a, b}, func(d statusDoc) bool { return len(d.running(engine.RoleActive)) == 3 })
	waitCommitted(t, f.adm, "fo", "in", in.ends)

	// The leader is the one that logged assignments.
	if a.logged(t, `msg=assignment`) {
		a, b = b, a
	}
	gen := a.mustStatus(t).Generation
	for _, m := range []*member{a, b} {
		other := map[*member]*member{a: b, b: a}[m]
		tasks := m.mustStatus(t).running(engine.RoleActive)
		m.stop(t)
		m.restart(t)
		waitRoles(t, "the restarted process runs its tasks", []*member{m}, func(d statusDoc) bool { return len(d.running(engine.RoleActive)) == 3 })
		if got := m.mustStatus(t).running(engine.RoleActive); !slices.Equal(got, tasks) {
			t.Errorf("restarted, %s runs %v, want %v", m.name, got, tasks)
		}
		if g, o := m.mustStatus(t).Generation, other.mustStatus(t).Generation; g != gen || o != gen {
			t.Errorf("generation %d before %s restarted, %d (restarted) and %d (the other) after, want no rebalance", gen, m.name, g, o)
		}
		restored := m.restored(t, 0)
		for _, task := range tasks {
			if n, ok := restored[task]; !ok || n != 0 {
				t.Errorf("restarted, %s restored %d records of %s (logged %v), want 0", m.name, n, task, ok)
			}
		}
		t.Logf("static restart of %s: generation %d kept, %d tasks back, 0 records restored", m.name, gen, len(tasks))
	}
	<-f.feed(in, 1_000, time.Second)
	f.checkNoLoss(t, in)
}

// testRacks: four processes on two racks, one standby of every task: no
// standby is on its active's rack.
func testRacks(t *testing.T, f *fleet) {
	shared := "num_standby_replicas: 1\n"
	rackOf := map[*member]string{}
	var ms []*member
	for i, name := range []string{"a", "b", "c", "d"} {
		rack := "r" + strconv.Itoa(i%2)
		m := f.start(name, shared+"rack: "+rack+"\n")
		rackOf[m] = rack
		ms = append(ms, m)
	}
	activeOn, standbyOn := map[string]*member{}, map[string]*member{}
	var last error
	waitUntil(t, "every task runs with one standby", func() bool {
		clear(activeOn)
		clear(standbyOn)
		for _, m := range ms {
			d, err := m.status()
			if last = err; err != nil {
				return false
			}
			for _, task := range d.running(engine.RoleActive) {
				activeOn[task] = m
			}
			for _, task := range d.running(engine.RoleStandby) {
				standbyOn[task] = m
			}
		}
		return len(activeOn) == fleetParts && len(standbyOn) == fleetParts
	}, func() string {
		return fmt.Sprintf("active %d, standby %d tasks (%v)", len(activeOn), len(standbyOn), last)
	})
	for task, a := range activeOn {
		s := standbyOn[task]
		t.Logf("%s: active on %s (%s), standby on %s (%s)", task, a.name, rackOf[a], s.name, rackOf[s])
		if rackOf[a] == rackOf[s] {
			t.Errorf("task %s has its standby on its active's rack %s", task, rackOf[a])
		}
	}
}

// fleet is one subtest's broker, topics "in" and "out", and processes of
// application "fo".
type fleet struct {
	t          *testing.T
	bin, guest string
	addr, dir  string
	cl         *kgo.Client
	adm        *kadm.Client
	rng        *rand.Rand
}

func newFleet(t *testing.T, bin, guest string) *fleet {
	f := &fleet{t: t, bin: bin, guest: guest, addr: startBrokerProcess(t, bin), dir: t.TempDir(), rng: rand.New(rand.NewPCG(7, 7))}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.addr), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f.cl, f.adm = cl, kadm.NewClient(cl)
	if _, err := f.adm.CreateTopics(t.Context(), fleetParts, 1, nil, "in", "out"); err != nil {
		t.Fatal(err)
	}
	return f
}

// preload writes n records before any process starts, so that stores and
// changelogs are large, and returns the input, which feed adds to.
func (f *fleet) preload(n int) *crashInput {
	in := newCrashInput(0, fleetKeys, f.rng)
	<-f.feed(in, n, 0)
	return in
}

// feed adds n records to in, written over d; the channel closes once all
// are written.
func (f *fleet) feed(in *crashInput, n int, d time.Duration) <-chan struct{} {
	more := newCrashInput(n, fleetKeys, f.rng)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := more.feed(f.t.Context(), f.cl, d); err != nil {
			f.t.Error(err)
			return
		}
		for p, e := range more.ends {
			in.ends[p] = max(in.ends[p], e)
		}
	}()
	return done
}

// checkNoLoss waits until the group has committed all of in, then checks
// that every input record has an output, and returns the outputs of each
// input (partition, offset), read_committed.
func (f *fleet) checkNoLoss(t *testing.T, in *crashInput) map[[2]int64]int {
	t.Helper()
	waitCommitted(t, f.adm, "fo", "in", in.ends)
	// Under exactly_once a killed process's open transaction holds the
	// outputs' last stable offset back until the broker aborts it, after
	// the transaction timeout: read_committed, nothing after it shows
	// before then.
	var open []int32
	waitUntil(t, "no transaction is open on the output", func() bool {
		open = open[:0]
		lso, err1 := f.adm.ListCommittedOffsets(t.Context(), "out")
		hwm, err2 := f.adm.ListEndOffsets(t.Context(), "out")
		if err1 != nil || err2 != nil {
			return false
		}
		hwm.Each(func(o kadm.ListedOffset) {
			if l, ok := lso.Lookup("out", o.Partition); !ok || l.Offset < o.Offset {
				open = append(open, o.Partition)
			}
		})
		return len(open) == 0
	}, func() string { return fmt.Sprintf("partitions with an open transaction: %v", open) })
	seen := readOutputs(t, f.cl, f.adm)
	lost, total := 0, int64(0)
	for p, n := range in.ends {
		total += n
		for o := range n {
			if seen[[2]int64{int64(p), o}] == 0 {
				lost++
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d input records have no output", lost, total)
	}
	return seen
}

func (f *fleet) endOffsets(t *testing.T, topic string) map[int32]int64 {
	t.Helper()
	ends, err := f.adm.ListEndOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// member is one `flowstate run` process of the fleet, restartable.
type member struct {
	f    *fleet
	name string
	cfg  string
	log  string // of the current run
	http string // its /status address, as logged
	cmd  *exec.Cmd
	runs int
}

// start starts process name with the config lines extra.
func (f *fleet) start(name, extra string) *member {
	f.t.Helper()
	m := &member{f: f, name: name}
	f.t.Cleanup(func() {
		if f.t.Failed() {
			f.t.Logf("%s's log, run %d, ends:\n%s", m.name, m.runs, tail(m.log))
			// SCALEOUT_TEST_LOGS=dir keeps the whole logs of a failed run (not
			// FLOWSTATE_*: the hosts would read it as config).
			if d := os.Getenv("SCALEOUT_TEST_LOGS"); d != "" {
				b, _ := os.ReadFile(m.log)
				_ = os.WriteFile(filepath.Join(d, filepath.Base(m.log)), b, 0o644)
			}
		}
	})
	m.cfg = writeFile(f.t, f.dir, name+".yaml", fmt.Sprintf(`application_id: fo
brokers: [%s]
state_dir: %s
commit_interval: 200ms
http_addr: 127.0.0.1:0
pipelines:
  sums:
    module: %s
    inputs: [in]
    outputs: [out]
    stores: [sums]
%s`, f.addr, filepath.Join(f.dir, name), f.guest, extra))
	m.restart(f.t)
	return m
}

var httpListening = regexp.MustCompile(`msg="http endpoint listening" addr=(\S+)`)

// restart starts the process again, after stop or kill.
func (m *member) restart(t *testing.T) {
	t.Helper()
	m.runs++
	m.log = filepath.Join(m.f.dir, fmt.Sprintf("%s-%d.log", m.name, m.runs))
	m.cmd = startHost(t, m.f.bin, m.cfg, m.log)
	waitLog(t, m.log, "http endpoint listening")
	b, err := os.ReadFile(m.log)
	if err != nil {
		t.Fatal(err)
	}
	mm := httpListening.FindSubmatch(b)
	if mm == nil {
		t.Fatalf("%s: no http address in its log:\n%s", m.name, tail(m.log))
	}
	m.http = string(mm[1])
}

func (m *member) kill(t *testing.T) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = m.cmd.Wait()
}

// stop stops the process cleanly.
func (m *member) stop(t *testing.T) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", m.name, err, tail(m.log))
	}
}

func (m *member) status() (statusDoc, error) { return fetchStatus(m.f.t.Context(), m.http) }

func (m *member) mustStatus(t *testing.T) statusDoc {
	t.Helper()
	d, err := m.status()
	if err != nil {
		t.Fatalf("%s: %v", m.name, err)
	}
	return d
}

func (m *member) logSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(m.log)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func (m *member) logged(t *testing.T, s string) bool {
	t.Helper()
	b, err := os.ReadFile(m.log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), s)
}

// restored reads the current run's log from byte from for the records
// each active task's last restore replayed; standbys' catch-ups are left
// out.
func (m *member) restored(t *testing.T, from int64) map[string]int64 {
	t.Helper()
	file, err := os.Open(m.log)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.Seek(from, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		mm := restoreDone.FindStringSubmatch(line)
		if mm == nil || strings.Contains(line, "role="+engine.RoleStandby) {
			continue
		}
		out[mm[1]], _ = strconv.ParseInt(mm[2], 10, 64)
	}
	return out
}

// ran reports whether the current run's log, from byte from, has task
// RUNNING as an active task.
func (m *member) ran(t *testing.T, from int64, task string) bool {
	t.Helper()
	b, err := os.ReadFile(m.log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b[min(from, int64(len(b))):]), "\n") {
		if strings.Contains(line, `msg="task RUNNING"`) && strings.HasSuffix(line, " task="+task) {
			return true
		}
	}
	return false
}

// running returns the tasks of the role RUNNING in d, sorted.
func (d statusDoc) running(role string) []string {
	var out []string
	for _, t := range d.Tasks {
		if t.Role == role && t.State == engine.Running.String() {
			out = append(out, t.Task)
		}
	}
	slices.Sort(out)
	return out
}

// maxLag is the largest lag of d's tasks.
func (d statusDoc) maxLag() int64 {
	var m int64
	for _, t := range d.Tasks {
		m = max(m, t.Lag)
	}
	return m
}

// waitRoles waits until ok holds for the status of every member in ms.
func waitRoles(t *testing.T, what string, ms []*member, ok func(statusDoc) bool) {
	t.Helper()
	last := make([]string, len(ms))
	waitUntil(t, what, func() bool {
		all := true
		for i, m := range ms {
			d, err := m.status()
			if err != nil {
				last[i] = fmt.Sprintf("%s: %v", m.name, err)
				all = false
				continue
			}
			last[i] = fmt.Sprintf("%s: active %v standby %v warm-up %v lag %d", m.name,
				d.running(engine.RoleActive), d.running(engine.RoleStandby), d.running(engine.RoleWarmup), d.maxLag())
			all = ok(d) && all
		}
		return all
	}, func() string { return strings.Join(last, "\n") })
}

// outputWatch samples the end offsets of "out" and keeps, per partition,
// the longest time between two increases.
type outputWatch struct {
	stopc chan struct{}
	done  chan []time.Duration
}

func watchOutput(f *fleet) *outputWatch {
	w := &outputWatch{stopc: make(chan struct{}), done: make(chan []time.Duration, 1)}
	go func() {
		ends := make([]int64, fleetParts)
		changed := make([]time.Time, fleetParts)
		gaps := make([]time.Duration, fleetParts)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		sample := func(now time.Time) {
			offs, err := f.adm.ListEndOffsets(f.t.Context(), "out")
			if err != nil {
				return
			}
			offs.Each(func(o kadm.ListedOffset) {
				p := o.Partition
				if o.Offset <= ends[p] {
					return
				}
				if !changed[p].IsZero() {
					gaps[p] = max(gaps[p], now.Sub(changed[p]))
				}
				ends[p], changed[p] = o.Offset, now
			})
		}
		for {
			select {
			case now := <-tick.C:
				sample(now)
			case <-w.stopc:
				w.done <- gaps
				return
			}
		}
	}()
	return w
}

// stop ends the watch and returns the longest pause of each partition.
func (w *outputWatch) stop() []time.Duration {
	close(w.stopc)
	return <-w.done
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}
