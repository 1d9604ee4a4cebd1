package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/config"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokerConfig configures the embedded broker.
type brokerConfig struct {
	// Port is the port on 127.0.0.1; 0 picks a free one.
	Port int
	// DataDir persists topics, offsets and groups across restarts; empty
	// keeps everything in memory.
	DataDir string
	// Partitions is the partition count of topics created without one
	// (auto-created, or CreateTopics with -1).
	Partitions int
	// Logger receives the broker's warnings and errors, and its request
	// logs at debug level.
	Logger *slog.Logger
}

// startBroker starts a one-node kfake cluster listening on 127.0.0.1. The
// caller closes it; Close persists the data when DataDir is set.
func startBroker(cfg brokerConfig) (*kfake.Cluster, string, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(cfg.Port),
		kfake.DefaultNumPartitions(cfg.Partitions),
		// Real brokers default auto.create.topics.enable to true, and kcat
		// relies on it.
		kfake.AllowAutoTopicCreation(),
		kfake.WithLogger(kfakeLogger{cfg.Logger}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, "", fmt.Errorf("embedded broker: %w", err)
	}
	return c, c.ListenAddrs()[0], nil
}

// kfakeLogger passes kfake's logs to slog: errors and warnings as such, the
// rest (one line per request) at debug.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	default:
		sl = slog.LevelDebug
	}
	if !l.log.Enabled(context.Background(), sl) {
		return
	}
	l.log.Log(context.Background(), sl, fmt.Sprintf(format, args...))
}

// brokerFlags are the flags of `flowstate broker`.
type brokerFlags struct {
	port       int
	dataDir    string
	partitions int
	topics     []string
	logLevel   string
}

func newBrokerFlags() (*pflag.FlagSet, *brokerFlags) {
	f := &brokerFlags{}
	fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	fs.IntVar(&f.port, "port", 9092, "port on 127.0.0.1 (0 picks a free one)")
	fs.StringVar(&f.dataDir, "data-dir", ".state/broker", "`directory` persisting topics, offsets and groups (empty: memory only)")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of topics created without a count")
	fs.StringSliceVar(&f.topics, "topics", nil, "topics to create at start, if missing, with --partitions partitions; repeatable or comma-separated")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	return fs, f
}

// runBroker is `flowstate broker`: the embedded broker alone, until ctx is
// done. It prints the broker's address on stdout.
func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newBrokerFlags()
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	level, err := config.ParseLevel(f.logLevel)
	if err != nil {
		return usageError{err}
	}
	if f.partitions < 1 {
		return usageError{fmt.Errorf("--partitions: %d is not positive", f.partitions)}
	}
	log := newLogger(stderr, level)
	c, addr, err := startBroker(brokerConfig{
		Port:       f.port,
		DataDir:    f.dataDir,
		Partitions: f.partitions,
		Logger:     log.With("component", "broker"),
	})
	if err != nil {
		return err
	}
	if len(f.topics) > 0 {
		adm, err := kadm.NewOptClient(kgo.SeedBrokers(addr))
		if err == nil {
			err = createTopics(ctx, adm, f.topics, f.partitions, log)
			adm.Close()
		}
		if err != nil {
			c.Close()
			return err
		}
	}
	fmt.Fprintf(stdout, "broker listening on %s\n", addr)
	log.Info("broker started", "addr", addr, "data_dir", f.dataDir)
	<-ctx.Done()
	c.Close()
	log.Info("broker stopped")
	return nil
}
