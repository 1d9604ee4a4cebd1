package main

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
	"sync"
	"time"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/config"
	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/restore"
)

// The process's HTTP endpoint (http_addr): /metrics in the Prometheus text
// format, mapped from engine.Metrics, and /status, the same snapshot as
// JSON for `flowstate status`. This file is the one exporter of the binary:
// packages expose snapshots, only cmd/ names metrics.

// statusDoc is the JSON of /status.
type statusDoc struct {
	ApplicationID string       `json:"application_id"`
	InstanceID    string       `json:"instance_id,omitempty"`
	MemberID      string       `json:"member_id"`
	Generation    int32        `json:"generation"` // -1 before the process joined its group
	Version       string       `json:"version"`
	Tasks         []taskStatus `json:"tasks"`
}

// taskStatus is one task in /status. Durations are in seconds; -1 is
// unknown.
type taskStatus struct {
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
}

func newStatusDoc(cfg engine.Config, m engine.Metrics) statusDoc {
	doc := statusDoc{ApplicationID: cfg.ApplicationID, InstanceID: cfg.InstanceID, MemberID: m.MemberID, Generation: m.Generation,
		Version: version, Tasks: []taskStatus{}}
	for _, t := range m.Tasks {
		eta := -1.0
		if t.Restore.ETA >= 0 {
			eta = t.Restore.ETA.Seconds()
		}
		doc.Tasks = append(doc.Tasks, taskStatus{
			Task: t.Task, Pipeline: t.Pipeline, Partition: t.Partition, Role: t.Role, Lag: t.Lag,
			State: t.State.String(), Waiting: t.Restore.Waiting,
			Restored: t.Restore.Restored, Remaining: t.Restore.Remaining,
			Rate: t.Restore.Rate, ETA: eta, Took: t.Restore.Took.Seconds(),
		})
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

// writeMetrics writes m in the Prometheus text exposition format. Labels
// are pipelines and states only: never partitions, keys or offsets.
func writeMetrics(w io.Writer, m engine.Metrics) error {
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

// httpServer is the running endpoint.
type httpServer struct {
	addr string // as bound: the port is known also when 0 was asked for
	srv  *http.Server
	done chan error
}

// startHTTP serves /metrics and /status of e on addr until stop.
func startHTTP(addr string, cfg engine.Config, e *engine.Engine, log *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = writeMetrics(w, e.Metrics())
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(newStatusDoc(cfg, e.Metrics()))
	})
	s := &httpServer{
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

// stop closes the server and waits for it.
func (s *httpServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, <-s.done)
}

// watch is what `run` and `dev` show of the engine besides its log: the
// HTTP endpoint when http_addr is set, and restore progress bars when
// stdout is a terminal.
type watch struct {
	cfg  *config.Config
	bars *restoreBars
	http *httpServer

	once    sync.Once
	stopErr error
}

// newWatch returns the watch for cfg and the logger the command uses. With
// bars on a terminal shared with the log, the log prints above the bars and
// the periodic progress lines, which the bars replace, are turned off.
func newWatch(cfg *config.Config, stdout, stderr io.Writer) (*watch, *slog.Logger) {
	w := &watch{cfg: cfg}
	logOut := stderr
	if isTerminal(stdout) {
		w.bars = newRestoreBars(stdout)
		if isTerminal(stderr) {
			logOut = w.bars.logWriter(stderr)
			cfg.Engine.Restore.ProgressInterval = -1
		}
	}
	return w, newLogger(logOut, cfg.LogLevel)
}

// start attaches the watch to e, before e runs.
func (w *watch) start(e *engine.Engine, log *slog.Logger) error {
	if w.bars != nil {
		e.SetListener(engine.Listener{Restore: w.bars.listener(restore.Listener{})})
	}
	if w.cfg.HTTPAddr != "" {
		s, err := startHTTP(w.cfg.HTTPAddr, w.cfg.Engine, e, log)
		if err != nil {
			return err
		}
		w.http = s
	}
	return nil
}

// stop ends what newWatch and start began, after the engine has stopped.
// Only the first call does anything.
func (w *watch) stop() error {
	w.once.Do(func() {
		if w.http != nil {
			w.stopErr = w.http.stop()
		}
		if w.bars != nil {
			w.bars.close()
		}
	})
	return w.stopErr
}
