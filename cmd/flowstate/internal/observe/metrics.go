package observe

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/flowstate/flowstate/engine"
)

// Exporter maps an engine to Prometheus metrics, in a registry of its own:
// the engine's Metrics snapshot at each scrape, histograms from its Hooks,
// franz-go's client metrics (kprom) by client role, and the Go runtime and
// process collectors. It also routes franz-go's logs to the process log.
type Exporter struct {
	reg    *prometheus.Registry
	log    *slog.Logger
	source atomic.Pointer[func() engine.Metrics] // the attached engine's Metrics

	mu      sync.Mutex
	clients map[string]*clientMetrics // by role

	batch, call *prometheus.HistogramVec
	commit      *prometheus.HistogramVec
}

// ExporterConfig configures an Exporter.
type ExporterConfig struct {
	// Logger is the process log; franz-go's logs go to it, tagged with
	// component=kafka and the client's role.
	Logger *slog.Logger
	// KafkaLogLevel is the least level of franz-go's logs that reach
	// Logger. Default slog.LevelWarn: franz-go logs every connection and
	// fetch session at Info and Debug.
	KafkaLogLevel *slog.Level
}

// latencyBuckets are the histograms' buckets, in seconds: 50µs to 10s.
var latencyBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewExporter returns an Exporter with an empty registry but for the Go and
// process collectors and the histograms.
func NewExporter(cfg ExporterConfig) *Exporter {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	level := slog.LevelWarn
	if cfg.KafkaLogLevel != nil {
		level = *cfg.KafkaLogLevel
	}
	x := &Exporter{
		reg:     prometheus.NewRegistry(),
		log:     slog.New(minLevel{log.Handler(), level}).With("component", "kafka"),
		clients: map[string]*clientMetrics{},
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flowstate_process_batch_duration_seconds", Buckets: latencyBuckets,
			Help: "Time a task took to process one batch of input records: the guest calls and handing the outputs to the producer.",
		}, []string{"pipeline"}),
		call: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flowstate_process_guest_call_duration_seconds", Buckets: latencyBuckets,
			Help: "Time of one call of a pipeline's module over a batch, failed calls included.",
		}, []string{"pipeline"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flowstate_commit_duration_seconds", Buckets: latencyBuckets,
			Help: "Time of a commit: a task's under at_least_once, the process's transaction under exactly_once.",
		}, []string{"result"}),
	}
	x.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		x.batch, x.call, x.commit,
		engineCollector{x},
	)
	return x
}

// Registry is the exporter's registry, for a handler or a test's Gather.
func (x *Exporter) Registry() *prometheus.Registry { return x.reg }

// Instrument sets cfg's Hooks and ClientOpts, before engine.New: the
// histograms, and for each Kafka client the kprom hooks of its role and
// the logger.
func (x *Exporter) Instrument(cfg *engine.Config) {
	observer := func(v *prometheus.HistogramVec) map[string]prometheus.Observer {
		m := map[string]prometheus.Observer{}
		for _, p := range cfg.Pipelines {
			m[p.Name] = v.WithLabelValues(p.Name)
		}
		return m
	}
	// Resolved once: a hook runs per batch, on the processing path.
	batch, call := observer(x.batch), observer(x.call)
	ok, failed := x.commit.WithLabelValues("ok"), x.commit.WithLabelValues("failed")
	cfg.Hooks = engine.Hooks{
		BatchDone: func(pipeline string, _ int, took time.Duration) { observe(batch[pipeline], took) },
		GuestCall: func(pipeline string, _ int, took time.Duration) { observe(call[pipeline], took) },
		CommitDone: func(took time.Duration, err error) {
			if err != nil {
				failed.Observe(took.Seconds())
			} else {
				ok.Observe(took.Seconds())
			}
		},
	}
	prev := cfg.ClientOpts
	cfg.ClientOpts = func(role string) []kgo.Opt {
		var opts []kgo.Opt
		if prev != nil {
			opts = prev(role)
		}
		return append(opts,
			kgo.WithHooks(x.clientMetrics(role)),
			kgo.WithLogger(kslog.New(x.log.With("client", role))),
		)
	}
}

func observe(o prometheus.Observer, took time.Duration) {
	if o != nil {
		o.Observe(took.Seconds())
	}
}

// Attach makes the registry report e's Metrics; before it, the engine's
// families are absent.
func (x *Exporter) Attach(e *engine.Engine) { x.AttachMetrics(e.Metrics) }

// AttachMetrics makes the registry report the snapshots of f, an engine's
// Metrics or a test's.
func (x *Exporter) AttachMetrics(f func() engine.Metrics) { x.source.Store(&f) }

// clientMetrics returns the kprom hooks of a client role, made at the
// role's first client.
func (x *Exporter) clientMetrics(role string) *clientMetrics {
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.clients[role]
	if c == nil {
		reg := prometheus.Registerer(x.reg)
		if role == engine.ClientRestore {
			reg = noBuffered{x.reg}
		}
		c = &clientMetrics{Metrics: kprom.NewMetrics("flowstate",
			kprom.Subsystem("kafka"),
			kprom.Registerer(reg), kprom.Gatherer(x.reg),
			kprom.WithStaticLabel(prometheus.Labels{"client": role}),
			// By broker and topic (both bounded by the cluster and the
			// config), with record and batch counts.
			kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Records, kprom.Batches, kprom.UncompressedBytes),
		)}
		x.clients[role] = c
	}
	return c
}

// clientMetrics are kprom's hooks shared by every client of one role: a
// role's restore clients come and go, at most restore.max_parallel at a
// time. kprom registers its collectors when a client starts and drops
// them when it closes; here they are registered at the role's first
// client and kept, so that the counters of all the role's clients add up
// and outlive each client.
type clientMetrics struct {
	*kprom.Metrics
	once sync.Once
}

// OnNewClient registers the collectors at the role's first client.
func (c *clientMetrics) OnNewClient(cl *kgo.Client) { c.once.Do(func() { c.Metrics.OnNewClient(cl) }) }

// OnClientClosed keeps the collectors.
func (c *clientMetrics) OnClientClosed(*kgo.Client) {}

// noBuffered registers every kprom collector but its buffered-records and
// buffered-bytes gauges, which read the one client they were made with:
// for a role of many short-lived clients (restores) they would describe
// the first, long closed.
type noBuffered struct{ prometheus.Registerer }

func (r noBuffered) Register(c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc, 4)
	go func() { c.Describe(descs); close(descs) }()
	buffered := false
	for d := range descs {
		buffered = buffered || strings.Contains(d.String(), "_buffered_")
	}
	if buffered {
		return nil
	}
	return r.Registerer.Register(c)
}

func (r noBuffered) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// minLevel drops records below a level, in front of the process log's
// handler.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}
