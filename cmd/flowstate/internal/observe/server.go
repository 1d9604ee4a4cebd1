package observe

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/engine"
)

//go:embed status.html
var statusPage []byte

// ServerConfig configures Start.
type ServerConfig struct {
	// Addr is host:port to listen on; port 0 picks one.
	Addr string
	// Engine is the config the engine runs (brokers, group, pipelines).
	Engine engine.Config
	// Version goes into /status.
	Version string
	// Exporter serves /metrics; nil makes one without Kafka client metrics
	// or histograms (Instrument was not called).
	Exporter *Exporter
	// Logger receives the server's lifecycle lines.
	Logger *slog.Logger
}

// Server is the running endpoint: / (the status page), /status (JSON) and
// /metrics (Prometheus).
type Server struct {
	addr string // as bound: the port is known also when 0 was asked for
	cfg  ServerConfig
	e    *engine.Engine
	srv  *http.Server
	done chan error
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	hist    history
	members membersCache

	admin *kgo.Client
}

// membersCache is the group's last description.
type membersCache struct {
	at      time.Time
	members []Member
	err     string
}

// membersEvery bounds how often /status describes the group; after an
// error (a group not yet created), every second.
const membersEvery = 5 * time.Second

// Start serves e, which runs cfg.Engine, until Stop.
func Start(cfg ServerConfig, e *engine.Engine) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Exporter == nil {
		cfg.Exporter = NewExporter(ExporterConfig{Logger: cfg.Logger})
	}
	cfg.Exporter.Attach(e)
	admin, err := kgo.NewClient(kgo.SeedBrokers(cfg.Engine.Brokers...))
	if err != nil {
		return nil, fmt.Errorf("http_addr: kafka client: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("http_addr: %w", err)
	}
	s := &Server{addr: ln.Addr().String(), cfg: cfg, e: e, done: make(chan error, 1), admin: admin}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Exporter.Registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", s.serveStatus)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(statusPage)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.sample(time.Now())
	s.wg.Go(func() { s.sampler(ctx) })
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	cfg.Logger.Info("http endpoint listening", "addr", s.addr, "paths", "/ /metrics /status")
	return s, nil
}

// sampler adds a History sample every sampleEvery until ctx ends.
func (s *Server) sampler(ctx context.Context) {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.sample(now)
		}
	}
}

func (s *Server) sample(now time.Time) {
	m := s.e.Metrics()
	s.mu.Lock()
	s.hist.add(now, m)
	s.mu.Unlock()
}

// Status returns the /status document as of now.
func (s *Server) Status(ctx context.Context) Status {
	m := s.e.Metrics()
	doc := NewStatus(s.cfg.Engine, s.cfg.Version, m)
	doc.Addr = s.addr
	doc.Members, doc.MembersError = s.groupMembers(ctx, m.MemberID)
	s.mu.Lock()
	doc.History = slices.Clone(s.hist.samples)
	s.mu.Unlock()
	return doc
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	// The status page of one process polls the others' /status (a
	// read-only document) from the browser.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Status(r.Context()))
}

// groupMembers describes the application's group, at most every
// membersEvery.
func (s *Server) groupMembers(ctx context.Context, self string) ([]Member, string) {
	s.mu.Lock()
	c := s.members
	s.mu.Unlock()
	if age := time.Since(c.at); age < membersEvery && (c.err == "" || age < time.Second) {
		return mark(c.members, self), c.err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c = membersCache{at: time.Now()}
	groups, err := kadm.NewClient(s.admin).DescribeGroups(ctx, s.cfg.Engine.ApplicationID)
	if err == nil {
		err = groups.Error()
	}
	if err != nil {
		c.err = err.Error()
	}
	for _, g := range groups {
		for _, gm := range g.Members {
			m := Member{MemberID: gm.MemberID, ClientHost: gm.ClientHost}
			if gm.InstanceID != nil {
				m.InstanceID = *gm.InstanceID
			}
			if a, ok := gm.Assigned.AsConsumer(); ok {
				for _, t := range a.Topics {
					m.Partitions += len(t.Partitions)
				}
			}
			c.members = append(c.members, m)
		}
	}
	slices.SortFunc(c.members, func(a, b Member) int { return strings.Compare(a.MemberID, b.MemberID) })
	s.mu.Lock()
	s.members = c
	s.mu.Unlock()
	return mark(c.members, self), c.err
}

// mark returns a copy of ms with this process's member marked.
func mark(ms []Member, self string) []Member {
	out := slices.Clone(ms)
	for i := range out {
		out[i].Self = out[i].MemberID == self
	}
	return out
}

// Addr is the address the server listens on, with the port it bound when
// addr asked for port 0.
func (s *Server) Addr() string { return s.addr }

// Stop closes the server and waits for it.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.stop()
	s.wg.Wait()
	s.admin.Close()
	return errors.Join(err, <-s.done)
}
