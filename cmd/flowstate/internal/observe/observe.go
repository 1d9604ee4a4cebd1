package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flowstate/flowstate/engine"
)

// Status is the JSON of /status.
type Status struct {
	ApplicationID string       `json:"application_id"`
	InstanceID    string       `json:"instance_id,omitempty"`
	MemberID      string       `json:"member_id"`
	Generation    int32        `json:"generation"` // -1 before the process joined its group
	Version       string       `json:"version"`
	Tasks         []TaskStatus `json:"tasks"`
}

// TaskStatus is one task in /status. Durations are in seconds; -1 is
// unknown.
type TaskStatus struct {
	Task      string  `json:"task"`
	Pipeline  string  `json:"pipeline"`
	Partition int32   `json:"partition"`
	Role      string  `json:"role"` // active, standby or warm-up
	Lag       int64   `json:"lag"`  // changelog offsets the stores are behind
	State     string  `json:"state"`
	Waiting   bool    `json:"waiting,omitempty"` // for a restore turn
	Restored  int64   `json:"restored"`
	Remaining int64   `json:"remaining"`
	Rate      float64 `json:"rate"`
	ETA       float64 `json:"eta_seconds"`
	Took      float64 `json:"restore_seconds"`
	// Restarts counts the task's restarts after failures; Error is its
	// last failure, naming the pipeline, partition, module and cause;
	// RestartIn is the seconds until a FAILED task restarts, -1 when it
	// does not (restart: never).
	Restarts  int     `json:"restarts"`
	Error     string  `json:"error,omitempty"`
	RestartIn float64 `json:"restart_in_seconds,omitempty"`
}

// NewStatus returns the /status document of a process running cfg, of
// flowstate version, from its engine's metrics m.
func NewStatus(cfg engine.Config, version string, m engine.Metrics) Status {
	doc := Status{ApplicationID: cfg.ApplicationID, InstanceID: cfg.InstanceID, MemberID: m.MemberID, Generation: m.Generation,
		Version: version, Tasks: []TaskStatus{}}
	for _, t := range m.Tasks {
		eta := -1.0
		if t.Restore.ETA >= 0 {
			eta = t.Restore.ETA.Seconds()
		}
		ts := TaskStatus{
			Task: t.Task, Pipeline: t.Pipeline, Partition: t.Partition, Role: t.Role, Lag: t.Lag,
			State: t.State.String(), Waiting: t.Restore.Waiting,
			Restored: t.Restore.Restored, Remaining: t.Restore.Remaining,
			Rate: t.Restore.Rate, ETA: eta, Took: t.Restore.Took.Seconds(),
			Restarts: t.Restarts, Error: t.Error,
		}
		if t.State == engine.Failed {
			ts.RestartIn = -1
			if !t.RestartAt.IsZero() {
				ts.RestartIn = max(time.Until(t.RestartAt).Seconds(), 0)
			}
		}
		doc.Tasks = append(doc.Tasks, ts)
	}
	return doc
}

// metricDesc is one metric family.
type metricDesc struct {
	name, kind, help string
	value            func(engine.PipelineMetrics) float64
}

var restoreMetrics = []metricDesc{
	{"flowstate_restore_tasks", "gauge", "Tasks restoring their stores now.",
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Tasks) }},
	{"flowstate_restore_waiting_tasks", "gauge", "Restoring tasks waiting for a restore turn (restore.max_parallel).",
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Waiting) }},
	{"flowstate_restore_remaining_records", "gauge", "Changelog offsets the restoring tasks have left to replay.",
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Remaining) }},
	{"flowstate_restore_rate_records_per_second", "gauge", "Records per second the restoring tasks replay.",
		func(p engine.PipelineMetrics) float64 { return p.Restore.Rate }},
	{"flowstate_restore_records_total", "counter", "Changelog records replayed into stores.",
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Records) }},
	{"flowstate_restores_total", "counter", "Finished restores, also those with nothing to replay.",
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Restores) }},
	{"flowstate_restore_duration_seconds_total", "counter", "Wall time of the finished restores.",
		func(p engine.PipelineMetrics) float64 { return p.Restore.Duration.Seconds() }},
}

// taskStates are the states flowstate_tasks reports, each always present so
// that a dashboard sees zeros rather than gaps.
var taskStates = []engine.TaskState{engine.Created, engine.Restoring, engine.Running, engine.Closed, engine.Failed}

// taskRoles are the roles flowstate_tasks reports.
var taskRoles = []string{engine.RoleActive, engine.RoleStandby, engine.RoleWarmup}

// WriteMetrics writes m in the Prometheus text exposition format. Labels
// are pipelines and states only: never partitions, keys or offsets.
func WriteMetrics(w io.Writer, m engine.Metrics) error {
	var b strings.Builder
	for _, d := range restoreMetrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", d.name, d.help, d.name, d.kind)
		for _, p := range m.Pipelines {
			fmt.Fprintf(&b, "%s{pipeline=%s} %s\n", d.name, quoteLabel(p.Pipeline), formatFloat(d.value(p)))
		}
	}
	type roleState struct {
		role  string
		state engine.TaskState
	}
	counts := map[string]map[roleState]int{}
	lags := map[string]map[string]int64{}
	for _, p := range m.Pipelines {
		counts[p.Pipeline] = map[roleState]int{}
		lags[p.Pipeline] = map[string]int64{}
	}
	for _, t := range m.Tasks {
		if c := counts[t.Pipeline]; c != nil {
			c[roleState{t.Role, t.State}]++
			lags[t.Pipeline][t.Role] += t.Lag
		}
	}
	b.WriteString("# HELP flowstate_tasks Tasks of the process by role and state.\n# TYPE flowstate_tasks gauge\n")
	for _, p := range m.Pipelines {
		for _, role := range taskRoles {
			for _, s := range taskStates {
				fmt.Fprintf(&b, "flowstate_tasks{pipeline=%s,role=%s,state=%s} %d\n", quoteLabel(p.Pipeline), quoteLabel(role),
					quoteLabel(strings.ToLower(s.String())), counts[p.Pipeline][roleState{role, s}])
			}
		}
	}
	b.WriteString("# HELP flowstate_task_lag_records Changelog offsets the tasks' stores are behind their changelogs.\n# TYPE flowstate_task_lag_records gauge\n")
	for _, p := range m.Pipelines {
		for _, role := range taskRoles {
			fmt.Fprintf(&b, "flowstate_task_lag_records{pipeline=%s,role=%s} %d\n", quoteLabel(p.Pipeline), quoteLabel(role), lags[p.Pipeline][role])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// labelEscaper escapes what the text format wants escaped in a label
// value: backslash, double quote and newline.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// quoteLabel quotes a label value as the text format wants.
func quoteLabel(s string) string { return `"` + labelEscaper.Replace(s) + `"` }

// Server is the running endpoint.
type Server struct {
	addr string // as bound: the port is known also when 0 was asked for
	srv  *http.Server
	done chan error
}

// Start serves /metrics and /status of e, which runs cfg, on addr until
// Stop. version goes into /status.
func Start(addr string, cfg engine.Config, version string, e *engine.Engine, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = WriteMetrics(w, e.Metrics())
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(NewStatus(cfg, version, e.Metrics()))
	})
	s := &Server{
		addr: ln.Addr().String(),
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	log.Info("http endpoint listening", "addr", s.addr, "paths", "/metrics /status")
	return s, nil
}

// Addr is the address the server listens on, with the port it bound when
// addr asked for port 0.
func (s *Server) Addr() string { return s.addr }

// Stop closes the server and waits for it.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, <-s.done)
}
