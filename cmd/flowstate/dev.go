package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/config"
	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/crashpoint"
)

const (
	// waitTimeout bounds --exit-when-done's wait for the group to catch up.
	waitTimeout = 2 * time.Minute
	// waitPoll is how often that wait checks the group's offsets.
	waitPoll = 200 * time.Millisecond
	// printTimeout bounds reading the --print topic.
	printTimeout = time.Minute
)

// devFlags are the flags of `flowstate dev` that are not config keys.
type devFlags struct {
	config       *string
	feeds        []string
	print        string
	exitWhenDone bool
	crashPoint   *string
}

func newDevFlags() (*pflag.FlagSet, *devFlags) {
	fs := pflag.NewFlagSet("dev", pflag.ContinueOnError)
	f := &devFlags{config: addConfigFlags(fs), crashPoint: addCrashPointFlag(fs)}
	fs.Int("port", 0, "embedded broker port on 127.0.0.1, 0 for a free one (key dev.port)")
	fs.Int("partitions", 0, "partitions of the topics dev creates, default 4 (key dev.partitions)")
	fs.StringArrayVar(&f.feeds, "feed", nil, "produce each line of FILE to TOPIC, as TOPIC=FILE; repeatable. A line KEY<tab>VALUE has a key, other lines none")
	fs.StringVar(&f.print, "print", "", "at the end, print the latest value of each key of `TOPIC`")
	fs.BoolVar(&f.exitWhenDone, "exit-when-done", false, "stop once the application has committed every record of its inputs")
	return fs, f
}

// feed is one --feed: the lines of a file to produce to a topic.
type feed struct {
	topic, path string
}

func parseFeeds(specs []string) ([]feed, error) {
	var out []feed
	for _, s := range specs {
		topic, path, ok := strings.Cut(s, "=")
		if !ok || topic == "" || path == "" {
			return nil, usageError{fmt.Errorf("--feed %q: want TOPIC=FILE", s)}
		}
		if err := config.CheckReadable(path); err != nil {
			return nil, usageError{fmt.Errorf("--feed %s: %w", s, err)}
		}
		out = append(out, feed{topic, path})
	}
	return out, nil
}

// runDev is `flowstate dev`: an embedded broker persisted under
// <state_dir>/broker, the engine against it (creating missing topics), the
// --feed files produced, and after a signal or, with --exit-when-done, once
// every input record is committed, a clean stop and the --print table.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newDevFlags()
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	feeds, err := parseFeeds(f.feeds)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*f.config, fs, true)
	if err != nil {
		return err
	}
	if cfg.Engine.CrashPoints, err = crashpoint.Parse(*f.crashPoint, stderr); err != nil {
		return usageError{fmt.Errorf("--crash-point: %w", err)}
	}
	w, log := newWatch(cfg, stdout, stderr)
	defer w.stop()

	brokerDir := filepath.Join(cfg.Engine.StateDir, "broker")
	broker, addr, err := startBroker(brokerConfig{
		Port:       cfg.Dev.Port,
		DataDir:    brokerDir,
		Partitions: cfg.Dev.Partitions,
		Logger:     log.With("component", "broker"),
	})
	if err != nil {
		return err
	}
	// Closing persists the broker's data; it happens after the engine has
	// stopped and committed.
	defer broker.Close()
	fmt.Fprintf(stderr, "broker listening on %s\n", addr)
	log.Info("embedded broker started", "addr", addr, "data_dir", brokerDir)

	cfg.Engine.Brokers = []string{addr}
	cfg.Engine.CreateTopics = true
	cfg.Engine.TopicPartitions = cfg.Dev.Partitions
	cfg.Engine.Logger = log
	eng, err := engine.New(cfg.Engine)
	if err == nil {
		err = w.start(eng, log)
	}
	if err != nil {
		return errors.Join(err, w.stop())
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.RecordPartitioner(feedPartitioner{}),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// Feed topics are made before the engine starts so that it finds them,
	// rather than both creating them at once.
	var feedTopics []string
	for _, fd := range feeds {
		feedTopics = append(feedTopics, fd.topic)
	}
	if err := createTopics(ctx, adm, feedTopics, cfg.Dev.Partitions, log); err != nil {
		return err
	}

	engCtx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()
	engErr := make(chan error, 1)
	go func() { engErr <- eng.Run(engCtx) }()

	// The work goroutine feeds, waits if asked, and then stops the engine.
	// Any context error it returns comes from outside it: a signal, or the
	// engine's exit.
	workErr := make(chan error, 1)
	var failedErr error // tasks left FAILED once everything else was done
	go func() {
		err := func() error {
			for _, fd := range feeds {
				if err := produceFile(engCtx, cl, fd, log); err != nil {
					return err
				}
			}
			if !f.exitWhenDone {
				return nil
			}
			inputs := inputTopics(cfg.Engine)
			log.Info("waiting until the inputs are processed", "group", cfg.Engine.ApplicationID, "inputs", inputs)
			// The partitions of FAILED tasks are not waited for: their
			// offsets stay where the failure left them.
			// The snapshot of the last check says which tasks were FAILED
			// when the rest was caught up.
			var last engine.Metrics
			failed := func() map[string]map[int32]bool {
				last = eng.Metrics()
				return failedPartitions(cfg.Engine, last)
			}
			if err := waitCaughtUp(engCtx, adm, cfg.Engine.ApplicationID, inputs, transactional(cfg.Engine), failed, waitTimeout, log); err != nil {
				return err
			}
			if failedErr = failedTasks(last); failedErr != nil {
				log.Error("inputs processed but for the partitions of failed tasks, stopping", "err", failedErr)
				return nil
			}
			log.Info("inputs processed, stopping")
			return nil
		}()
		if err != nil || f.exitWhenDone {
			stopEngine()
		}
		workErr <- err
	}()
	// The engine returns once stopped: by a signal, by the work goroutine,
	// or by its own failure. Then the work goroutine is stopped too.
	runErr := <-engErr
	stopEngine()
	werr := <-workErr
	runErr = errors.Join(runErr, w.stop())
	if errors.Is(werr, context.Canceled) {
		werr = nil
	}
	if err := errors.Join(werr, runErr); err != nil {
		return err
	}

	if f.print != "" {
		// The signal that may have stopped the engine must not stop the
		// printing.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), printTimeout)
		defer cancel()
		latest, records, err := readLatest(pctx, adm, []string{addr}, f.print)
		if err != nil {
			return fmt.Errorf("print %s: %w", f.print, err)
		}
		fmt.Fprintf(stdout, "%s:\n", f.print)
		if err := formatTable(stdout, latest, records, printTop); err != nil {
			return err
		}
	}
	return failedErr
}

// failedPartitions returns the input partitions of the FAILED active tasks
// of m, by topic.
func failedPartitions(cfg engine.Config, m engine.Metrics) map[string]map[int32]bool {
	out := map[string]map[int32]bool{}
	for _, t := range m.Tasks {
		if t.Role != engine.RoleActive || t.State != engine.Failed {
			continue
		}
		for _, p := range cfg.Pipelines {
			if p.Name != t.Pipeline {
				continue
			}
			for _, topic := range p.Inputs {
				if out[topic] == nil {
					out[topic] = map[int32]bool{}
				}
				out[topic][t.Partition] = true
			}
		}
	}
	return out
}

// failedTasks returns an error naming each FAILED active task of m and its
// error, or nil.
func failedTasks(m engine.Metrics) error {
	var errs []error
	for _, t := range m.Tasks {
		if t.Role == engine.RoleActive && t.State == engine.Failed {
			errs = append(errs, fmt.Errorf("task %s FAILED (%d restarts): %s", t.Task, t.Restarts, t.Error))
		}
	}
	return errors.Join(errs...)
}

// inputTopics returns the input topics of every pipeline of cfg, sorted.
func inputTopics(cfg engine.Config) []string {
	var out []string
	for _, p := range cfg.Pipelines {
		out = append(out, p.Inputs...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// createTopics creates the topics that do not exist, with partitions
// partitions.
func createTopics(ctx context.Context, adm *kadm.Client, topics []string, partitions int, log *slog.Logger) error {
	for _, t := range topics {
		_, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, t)
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists):
			log.Info("topic exists", "topic", t)
		case err != nil:
			return fmt.Errorf("create topic %s: %w", t, err)
		default:
			log.Info("topic created", "topic", t, "partitions", partitions)
		}
	}
	return nil
}

// produceFile produces each non-empty line of fd's file as one record. A
// line KEY<tab>VALUE is produced with that key, hashed to a partition as
// Kafka's Java client does; other lines have no key and are spread round
// robin.
func produceFile(ctx context.Context, cl *kgo.Client, fd feed, log *slog.Logger) error {
	f, err := os.Open(fd.path)
	if err != nil {
		return fmt.Errorf("feed %s: %w", fd.topic, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var (
		n       int
		errc    = make(chan error, 1)
		promise = func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}
	)
	start := time.Now()
	for sc.Scan() {
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r := &kgo.Record{Topic: fd.topic}
		if k, v, ok := bytes.Cut(line, []byte("\t")); ok {
			r.Key, r.Value = bytes.Clone(k), bytes.Clone(v)
		} else {
			r.Value = bytes.Clone(line)
		}
		cl.Produce(ctx, r, promise)
		n++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("feed %s: read %s: %w", fd.topic, fd.path, err)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("feed %s: %w", fd.topic, err)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("feed %s: produce: %w", fd.topic, err)
	default:
	}
	log.Info("fed", "topic", fd.topic, "file", fd.path, "records", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// feedPartitioner hashes keyed records like Kafka's Java client and spreads
// records without a key round robin, one record at a time, so that a small
// file still reaches every partition.
type feedPartitioner struct{}

func (feedPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &feedTopicPartitioner{byKey: kgo.StickyKeyPartitioner(nil).ForTopic(topic)}
}

type feedTopicPartitioner struct {
	next  int
	byKey kgo.TopicPartitioner
}

func (p *feedTopicPartitioner) RequiresConsistency(r *kgo.Record) bool { return r.Key != nil }

func (p *feedTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Key != nil {
		return p.byKey.Partition(r, n)
	}
	p.next++
	return p.next % n
}

// waitCaughtUp polls until group has committed the end offset of every
// partition of topics but those skip returns (nil skips none), or timeout
// passes.
func waitCaughtUp(ctx context.Context, adm *kadm.Client, group string, topics []string, txn map[string]bool, skip func() map[string]map[int32]bool, timeout time.Duration, log *slog.Logger) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	for {
		var skipped map[string]map[int32]bool
		if skip != nil {
			skipped = skip()
		}
		done, status, err := caughtUp(wctx, adm, group, topics, txn, skipped)
		if err != nil {
			status = err.Error()
		}
		if done {
			return nil
		}
		log.Debug("waiting for the group", "group", group, "behind", status)
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("group %s did not commit the end offsets of its inputs within %s: %s", group, timeout, status)
		case <-tick.C:
		}
	}
}

// caughtUp reports whether group has committed the end offset of every
// partition of topics that holds records, and if not, which are behind.
//
// The committed offsets are read before the end offsets: an input record
// that is committed has had its outputs written, so when an application
// reads its own outputs (as wordcount reads words), their end offsets are
// listed after they were written.
//
// Under exactly_once a transaction's commit marker takes the offset after
// the last record of a partition the application writes, and a consumer
// commits the offset after its last record, not after the marker: for the
// topics in txn, a committed offset one below the end is caught up.
func caughtUp(ctx context.Context, adm *kadm.Client, group string, topics []string, txn map[string]bool, skip map[string]map[int32]bool) (bool, string, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		committed = nil // the group has not joined yet: nothing committed
	case err != nil:
		return false, "", fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return false, "", fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return false, "", fmt.Errorf("list end offsets: %w", err)
	}
	var behind []string
	var missing []string
	var records int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
				missing = append(missing, o.Topic)
			} else {
				behind = append(behind, fmt.Sprintf("%s/%d: %v", o.Topic, o.Partition, o.Err))
			}
			return
		}
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil && s.Offset >= o.Offset {
			return // nothing to process
		}
		if skip[o.Topic][o.Partition] {
			return
		}
		c, ok := committed.Lookup(o.Topic, o.Partition)
		at := int64(0)
		if ok {
			at = c.At
		}
		if txn[o.Topic] && at == o.Offset-1 {
			return // only the last transaction's marker is left
		}
		if at < o.Offset {
			behind = append(behind, fmt.Sprintf("%s/%d at %d of %d", o.Topic, o.Partition, at, o.Offset))
			records += o.Offset - at
		}
	})
	slices.Sort(behind)
	slices.Sort(missing)
	var status []string
	if len(missing) > 0 {
		status = append(status, "topics not created yet: "+strings.Join(slices.Compact(missing), ", "))
	}
	if len(behind) > 0 {
		status = append(status, fmt.Sprintf("%d records behind (%s)", records, strings.Join(behind, ", ")))
	}
	return len(status) == 0, strings.Join(status, "; "), nil
}

// readLatest reads topic from its start to the end offsets it has when
// called, and returns the latest value of each key (a tombstone deletes the
// key) and the number of records read. It reads committed records only.
func readLatest(ctx context.Context, adm *kadm.Client, brokers []string, topic string) (map[string][]byte, int, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, 0, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, 0, fmt.Errorf("list end offsets: %w", err)
	}
	if o, ok := ends.Lookup(topic, -1); ok && errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
		return nil, 0, errors.New("topic does not exist")
	}
	if err := ends.Error(); err != nil {
		return nil, 0, fmt.Errorf("list end offsets: %w", err)
	}
	want := map[int32]int64{} // partition -> end offset
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > s.Offset {
			want[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().At(s.Offset)
		}
	})
	latest := map[string][]byte{}
	if len(want) == 0 {
		return latest, 0, nil
	}
	// Control records are kept so that a transaction marker at the end of a
	// partition still shows that the end is reached.
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return nil, 0, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	records := 0
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("read: %w (%d partitions not read to the end)", err, len(want))
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("fetch %s/%d: %w", t, p, err))
		})
		if ferr != nil {
			return nil, 0, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			records++
			if r.Value == nil {
				delete(latest, string(r.Key))
			} else {
				latest[string(r.Key)] = r.Value
			}
		})
	}
	return latest, records, nil
}

// transactional returns the input topics that the application itself
// writes inside transactions: under exactly_once, its outputs that are
// also inputs.
func transactional(cfg engine.Config) map[string]bool {
	m := map[string]bool{}
	if cfg.Guarantee != engine.ExactlyOnce {
		return m
	}
	for _, p := range cfg.Pipelines {
		for _, t := range p.Outputs {
			m[t] = true
		}
	}
	return m
}
