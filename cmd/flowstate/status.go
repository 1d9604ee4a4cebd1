package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/observe"
)

// statusDoc is a process's /status document, as `flowstate status` reads it.
type statusDoc observe.Status

// statusTimeout bounds one /status request.
const statusTimeout = 5 * time.Second

type statusFlags struct {
	config *string
	addrs  []string
	json   bool
}

func newStatusFlags() (*pflag.FlagSet, *statusFlags) {
	fs := pflag.NewFlagSet("status", pflag.ContinueOnError)
	f := &statusFlags{}
	f.config = fs.StringP("config", "c", "", "YAML config `file` whose http_addr to ask (when --addr is not given)")
	fs.StringSliceVar(&f.addrs, "addr", nil, "host:port of a process's http_addr; repeatable or comma-separated")
	fs.BoolVar(&f.json, "json", false, "print each process's /status document instead of a table")
	return fs, f
}

// runStatus is `flowstate status`: the tasks of one or more processes, from
// their /status endpoints, as one table.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newStatusFlags()
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	addrs := f.addrs
	if len(addrs) == 0 {
		if *f.config == "" {
			return usageError{errors.New("give --addr host:port, or -c with a config that sets http_addr")}
		}
		cfg, err := loadConfig(*f.config, nil, false)
		if err != nil {
			return err
		}
		if cfg.HTTPAddr == "" {
			return fmt.Errorf("config %s sets no http_addr", *f.config)
		}
		addrs = []string{cfg.HTTPAddr}
	}
	docs := make([]statusDoc, len(addrs))
	var errs []error
	for i, a := range addrs {
		d, err := fetchStatus(ctx, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("status %s: %w", a, err))
			continue
		}
		docs[i] = d
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		for i, d := range docs {
			if d.ApplicationID != "" || len(d.Tasks) > 0 {
				if err := enc.Encode(map[string]any{"addr": addrs[i], "status": d}); err != nil {
					return err
				}
			}
		}
		return errors.Join(errs...)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	// GEN is the group generation each process last joined: processes
	// that show different ones are in the middle of a rebalance.
	fmt.Fprintln(tw, "PROCESS\tGEN\tTASK\tROLE\tSTATE\tLAG\tRESTORED\tREMAINING\tRATE\tETA\tRESTARTS\tERROR")
	for i, d := range docs {
		gen := "-"
		if d.Generation >= 0 {
			gen = strconv.Itoa(int(d.Generation))
		}
		for _, t := range d.Tasks {
			state := t.State
			if t.Waiting {
				state += " (waiting)"
			}
			switch {
			case t.State != "FAILED":
			case t.RestartIn < 0:
				state += " (no restart)"
			default:
				state += " (restart in " + etaText(max(t.RestartIn, 1)) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%d\t%s\n", addrs[i], gen, t.Task, t.Role, state, t.Lag,
				t.Restored, remainingText(t.Remaining), rateText(t.Rate), etaText(t.ETA), t.Restarts, errorText(t.Error))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func fetchStatus(ctx context.Context, addr string) (statusDoc, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return statusDoc{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return statusDoc{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusDoc{}, fmt.Errorf("HTTP %s", resp.Status)
	}
	var d statusDoc
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return statusDoc{}, fmt.Errorf("decode: %w", err)
	}
	return d, nil
}

// maxErrorText caps the ERROR column; /status has the whole error.
const maxErrorText = 160

// errorText is the first line of a task's last error, capped, or "-".
func errorText(e string) string {
	if e == "" {
		return "-"
	}
	e, _, _ = strings.Cut(e, "\n")
	if len(e) > maxErrorText {
		e = e[:maxErrorText] + "..."
	}
	return e
}

func remainingText(n int64) string {
	if n < 0 {
		return "?"
	}
	return strconv.FormatInt(n, 10)
}

func rateText(r float64) string {
	if r <= 0 {
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 0, 64) + "/s"
}

func etaText(s float64) string {
	switch {
	case s < 0:
		return "?"
	case s == 0:
		return "-"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}
