package config

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/field"
)

// EnvPrefix starts every environment variable that sets a config key:
// FLOWSTATE_ROCKSDB__BLOCK_CACHE_MB sets rocksdb.block_cache_mb.
const EnvPrefix = "FLOWSTATE_"

// Config is a loaded, defaulted and validated configuration.
type Config struct {
	Engine   engine.Config // Logger unset
	LogLevel slog.Level
	HTTPAddr string
	Dev      Dev
}

// Dev configures `flowstate dev` only (key dev).
type Dev struct {
	// Partitions is the partition count of the topics dev creates. Default 4.
	Partitions int `koanf:"partitions"`
	// Port is the embedded broker's port on 127.0.0.1; 0 (default) picks a
	// free one.
	Port int `koanf:"port"`
}

// EnsureDefaults fills zero fields with their defaults.
func (d *Dev) EnsureDefaults() {
	if d.Partitions == 0 {
		d.Partitions = 4
	}
}

// Validate reports every invalid field, keyed under dev.
func (d Dev) Validate() error {
	var errs field.List
	if d.Partitions < 0 {
		errs.Add("partitions", "%d is negative", d.Partitions)
	}
	if d.Port < 0 || d.Port > 65535 {
		errs.Add("port", "%d is not a port (0 picks a free one)", d.Port)
	}
	return errs.Err()
}

// fileConfig is the configuration as written. Every key is a field here or
// in the structs it holds, by their koanf tags, and any other key is an
// error; the fields' docs are on those structs.
type fileConfig struct {
	engine.Config `koanf:",squash"`
	// Pipelines maps a pipeline name to its pipeline. A map, not a list, so
	// that FLOWSTATE_PIPELINES__<NAME>__<KEY> can address one pipeline;
	// environment variables are lower-cased, so they reach only pipelines
	// with lower-case names, and a name must not contain a dot. It replaces
	// engine.Config.Pipelines, which is not a key.
	Pipelines map[string]engine.Pipeline `koanf:"pipelines"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `koanf:"log_level"`
	// HTTPAddr, host:port, serves /metrics (Prometheus text) and /status
	// (JSON, read by `flowstate status`). Default "" (no server).
	HTTPAddr string `koanf:"http_addr"`
	// Dev configures `flowstate dev` only.
	Dev Dev `koanf:"dev"`
}

// Source is where Load reads a configuration.
type Source struct {
	// Path is the YAML file; none when empty.
	Path string
	// Flags are a command's flags: those that were set and are named in
	// FlagKeys override the file and the environment. May be nil.
	Flags *pflag.FlagSet
	// FlagKeys maps a flag name to the config key it sets (state-dir to
	// state_dir). Other flags are not config keys.
	FlagKeys map[string]string
	// Dev loads for `flowstate dev`: brokers are not required, as dev
	// brings its own.
	Dev bool
}

// Load reads the YAML file of src, then the FLOWSTATE_ environment
// variables, then the flags of src that were set, each overriding the one
// before, and decodes them into a Config. The result is defaulted and
// validated; the error lists every bad or unknown key once, one per line,
// sorted by key, saying which environment variable set the key when one
// did. It wraps a field.List.
func Load(src Source) (*Config, error) {
	ko := koanf.New(".")
	if src.Path != "" {
		if err := ko.Load(file.Provider(src.Path), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config %s: %w", src.Path, err)
		}
	}
	// FLOWSTATE_ROCKSDB__BLOCK_CACHE_MB -> rocksdb.block_cache_mb. envKeys
	// remembers each key's variable for error messages.
	envKeys := map[string]string{}
	err := ko.Load(env.Provider(EnvPrefix, ".", func(name string) string {
		key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "__", "."))
		envKeys[key] = name
		return key
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("config from environment: %w", err)
	}
	if src.Flags != nil {
		// A nil koanf makes posflag skip every flag that was not set, so a
		// flag's default never overrides the file.
		err := ko.Load(posflag.ProviderWithFlag(src.Flags, ".", nil, func(f *pflag.Flag) (string, any) {
			key, ok := src.FlagKeys[f.Name]
			if !ok {
				return "", nil
			}
			if f.Changed {
				delete(envKeys, key) // the flag's value, not the variable's
			}
			return key, posflag.FlagVal(src.Flags, f)
		}), nil)
		if err != nil {
			return nil, fmt.Errorf("config from flags: %w", err)
		}
	}

	fc, decodeErrs := decode(ko)
	cfg, errs := fc.validate(ko, src.Dev)
	// A key that could not be decoded is reported once, not also as
	// missing or invalid, and nor is anything under it.
	errs = slices.DeleteFunc(errs, func(e *field.Error) bool {
		return slices.ContainsFunc(decodeErrs, func(d *field.Error) bool {
			return d.Key != "" && (e.Key == d.Key || strings.HasPrefix(e.Key, d.Key+"."))
		})
	})
	errs = append(decodeErrs, errs...)
	if len(errs) == 0 {
		return cfg, nil
	}
	for i, e := range errs {
		if v, ok := envKeys[e.Key]; ok {
			c := *e
			c.Msg += " (from " + v + ")"
			errs[i] = &c
		}
	}
	slices.SortStableFunc(errs, func(a, b *field.Error) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Msg, b.Msg))
	})
	errs = slices.CompactFunc(errs, func(a, b *field.Error) bool { return a.Key == b.Key && a.Msg == b.Msg })
	if src.Path != "" {
		return nil, fmt.Errorf("config %s:\n%w", src.Path, errs)
	}
	return nil, fmt.Errorf("config:\n%w", errs)
}

// validate turns fc into a Config, applies the defaults and returns every
// problem. With dev set, the brokers are the embedded broker's.
func (fc *fileConfig) validate(ko *koanf.Koanf, dev bool) (*Config, field.List) {
	zeros := explicitZeros(ko, fc)
	cfg := &Config{Engine: fc.Config, Dev: fc.Dev, HTTPAddr: fc.HTTPAddr}
	cfg.Engine.Pipelines = nil
	for _, name := range slices.Sorted(maps.Keys(fc.Pipelines)) {
		p := fc.Pipelines[name]
		p.Name = name
		cfg.Engine.Pipelines = append(cfg.Engine.Pipelines, p)
	}
	cfg.Engine.EnsureDefaults()
	cfg.Dev.EnsureDefaults()
	if dev {
		// Replaced by the embedded broker's address once it listens.
		cfg.Engine.Brokers = []string{"127.0.0.1:0"}
	}

	var errs field.List
	errs = append(errs, defaulted(cfg, zeros)...)
	errs.Nest("", cfg.Engine.Validate())
	errs.Nest("dev", cfg.Dev.Validate())
	level, err := ParseLevel(fc.LogLevel)
	errs.Nest("", err)
	cfg.LogLevel = level
	if cfg.HTTPAddr != "" {
		if _, port, err := net.SplitHostPort(cfg.HTTPAddr); err != nil {
			errs.Add("http_addr", "%q is not host:port", cfg.HTTPAddr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs.Add("http_addr", "%q has no valid port", cfg.HTTPAddr)
		}
	}
	declared := map[string]bool{}
	for _, p := range cfg.Engine.Pipelines {
		for _, st := range p.Stores {
			declared[st] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Engine.RocksDB.Stores)) {
		if !declared[name] {
			errs.Add("rocksdb.stores."+name, "no pipeline declares store %q", name)
		}
	}
	for _, p := range cfg.Engine.Pipelines {
		if p.Module == "" {
			continue // reported by Validate
		}
		if err := CheckReadable(p.Module); err != nil {
			errs.Add("pipelines."+p.Name+".module", "%s", err)
		}
	}
	return cfg, errs
}

// explicitZeros returns the keys that the sources set to a zero number,
// which EnsureDefaults may replace.
func explicitZeros(ko *koanf.Koanf, fc *fileConfig) map[string]bool {
	zeros := map[string]bool{}
	leaves("", reflect.ValueOf(fc).Elem(), func(key string, v reflect.Value) {
		if isNumber(v.Kind()) && v.IsZero() && ko.Exists(key) {
			zeros[key] = true
		}
	})
	return zeros
}

// defaulted reports the keys of zeros that EnsureDefaults replaced: a 0
// that means nothing for the key, which the defaults would otherwise
// silently override. Where 0 means something, the field is a pointer
// (engine.Config.AcceptableRecoveryLag) or 0 is its default.
func defaulted(cfg *Config, zeros map[string]bool) field.List {
	if len(zeros) == 0 {
		return nil
	}
	after := fileConfig{Config: cfg.Engine, Pipelines: map[string]engine.Pipeline{}, Dev: cfg.Dev}
	for _, p := range cfg.Engine.Pipelines {
		after.Pipelines[p.Name] = p
	}
	var errs field.List
	leaves("", reflect.ValueOf(&after).Elem(), func(key string, v reflect.Value) {
		if zeros[key] && !v.IsZero() {
			errs.Add(key, "%v is not allowed: leave the key out for the default, %v", reflect.Zero(v.Type()), v)
		}
	})
	return errs
}

// leaves calls fn with every config value of v, a struct, and its key:
// fields by their koanf tags (squashed structs in their holder, fields
// tagged "-" or untagged skipped), nested structs and maps of structs
// walked into, map entries in key order.
func leaves(prefix string, v reflect.Value, fn func(key string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("koanf"), ",")
		fv := v.Field(i)
		switch {
		case !sf.IsExported() || name == "-":
		case opts == "squash":
			leaves(prefix, fv, fn)
		case name == "":
		case fv.Kind() == reflect.Struct:
			leaves(field.Join(prefix, name), fv, fn)
		case fv.Kind() == reflect.Map && fv.Type().Elem().Kind() == reflect.Struct:
			keys := fv.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				leaves(field.Join(prefix, name)+"."+k.String(), fv.MapIndex(k), fn)
			}
		default:
			fn(field.Join(prefix, name), fv)
		}
	}
}

func isNumber(k reflect.Kind) bool {
	return isInt(k) || k == reflect.Float32 || k == reflect.Float64
}

// CheckReadable reports whether path is a file this process can read.
func CheckReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory, not a .wasm file", path)
	}
	return nil
}

// ParseLevel parses a log_level; empty is info. The error is a
// *field.Error keyed log_level.
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, field.Errorf("log_level", "%q is not debug, info, warn or error", s)
}
