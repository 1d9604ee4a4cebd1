package main

import (
	"github.com/spf13/pflag"

	"github.com/flowstate/flowstate/cmd/flowstate/internal/config"
)

// flagKeys maps the flags that set config keys to their keys. Other flags of
// a command are not config keys.
var flagKeys = map[string]string{
	"brokers":    "brokers",
	"state-dir":  "state_dir",
	"log-level":  "log_level",
	"http-addr":  "http_addr",
	"port":       "dev.port",
	"partitions": "dev.partitions",
}

// addConfigFlags adds the flags shared by the commands that read a config.
func addConfigFlags(fs *pflag.FlagSet) *string {
	path := fs.StringP("config", "c", "", "YAML config `file`")
	fs.StringSlice("brokers", nil, "seed brokers, host:port (key brokers)")
	fs.String("state-dir", "", "state directory (key state_dir)")
	fs.String("log-level", "", "debug, info, warn or error (key log_level)")
	fs.String("http-addr", "", "serve /metrics and /status on `host:port` (key http_addr)")
	return path
}

// loadConfig loads the config of a command: the YAML file at path (none if
// path is empty), the FLOWSTATE_ environment variables and the flags of fs
// that set keys (fs may be nil). With dev set, brokers is not required:
// `flowstate dev` brings its own.
func loadConfig(path string, fs *pflag.FlagSet, dev bool) (*config.Config, error) {
	return config.Load(config.Source{Path: path, Flags: fs, FlagKeys: flagKeys, Dev: dev})
}
