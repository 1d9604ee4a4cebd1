package main

import (
	"io"
	"log/slog"
	"sync"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/config"
	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/restore"
)

// watch is what `run` and `dev` show of the engine besides its log: the
// HTTP endpoint when http_addr is set, and restore progress bars when
// stdout is a terminal.
type watch struct {
	cfg  *config.Config
	bars *restoreBars
	exp  *observe.Exporter // with http_addr: set up on the engine's config by newWatch
	http *observe.Server

	once    sync.Once
	stopErr error
}

// newWatch returns the watch for cfg and the logger the command uses. With
// bars on a terminal shared with the log, the log prints above the bars and
// the periodic progress lines, which the bars replace, are turned off. With
// http_addr set it instruments cfg.Engine for the metrics exporter, so it
// comes before engine.New.
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
	log := newLogger(logOut, cfg.LogLevel)
	if cfg.HTTPAddr != "" {
		w.exp = observe.NewExporter(observe.ExporterConfig{Logger: log})
		w.exp.Instrument(&cfg.Engine)
	}
	return w, log
}

// start attaches the watch to e, before e runs.
func (w *watch) start(e *engine.Engine, log *slog.Logger) error {
	if w.bars != nil {
		e.SetListener(engine.Listener{Restore: w.bars.listener(restore.Listener{})})
	}
	if w.cfg.HTTPAddr != "" {
		s, err := observe.Start(observe.ServerConfig{Addr: w.cfg.HTTPAddr, Engine: w.cfg.Engine, Version: version, Exporter: w.exp, Logger: log}, e)
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
			w.stopErr = w.http.Stop()
		}
		if w.bars != nil {
			w.bars.close()
		}
	})
	return w.stopErr
}
