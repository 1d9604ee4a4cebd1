package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/v2"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/internal/field"
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	// indexRe matches mapstructure's map index in a field name:
	// pipelines[wordcount].module.
	indexRe = regexp.MustCompile(`\[([^\]]*)\]`)
)

// decode decodes ko into a fileConfig, returning one error per key that
// could not be decoded, named as in the YAML.
func decode(ko *koanf.Koanf) (*fileConfig, []*field.Error) {
	var fc fileConfig
	err := unmarshal(ko, "", &fc)
	if err == nil {
		return &fc, nil
	}
	errs := decodeErrors(err)
	// A pipeline with a bad key is left out of the map; decode what it
	// has, so that the rest of it is checked too rather than reported
	// missing. Its errors are those above.
	for _, name := range ko.MapKeys("pipelines") {
		if fc.Pipelines == nil {
			fc.Pipelines = map[string]engine.Pipeline{}
		}
		if _, ok := fc.Pipelines[name]; !ok {
			var p engine.Pipeline
			_ = unmarshal(ko, "pipelines."+name, &p)
			fc.Pipelines[name] = p
		}
	}
	return &fc, errs
}

// unmarshal decodes the subtree of ko at path into out, strictly: unknown
// keys are errors, durations need a unit, strings are parsed where
// integers or lists are wanted (as environment variables give them).
func unmarshal(ko *koanf.Koanf, path string, out any) error {
	return ko.UnmarshalWithConf(path, out, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		ErrorUnused: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			restartHook,
			durationHook,
			listHook,
			intHook,
			mapHook,
		),
	}})
}

// durationHook parses durations from strings ("1s", "500ms") and refuses
// bare numbers, which would otherwise silently be nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	if k := kind(from); k == "integer" || k == "number" {
		return nil, fmt.Errorf("%v has no unit: want a duration such as 500ms, 5s or 1m", data)
	} else if k != "string" {
		return nil, fmt.Errorf("want a duration such as 500ms, 5s or 1m, got %s", withArticle(k))
	}
	d, err := time.ParseDuration(strings.TrimSpace(data.(string)))
	if err != nil {
		return nil, fmt.Errorf("%q is not a duration such as 500ms, 5s or 1m", data)
	}
	return d, nil
}

// listHook splits a string on commas where a list is wanted, so that
// FLOWSTATE_BROKERS=a:9092,b:9092 and `inputs: sentences` work.
func listHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice || to.Elem().Kind() != reflect.String {
		return data, nil
	}
	var out []string
	for s := range strings.SplitSeq(data.(string), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// restartHook reads `restart: never` (a strategy alone) as
// `restart: {strategy: never}`.
func restartHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[engine.Restart]() || from.Kind() != reflect.String {
		return data, nil
	}
	return map[string]any{"strategy": data}, nil
}

// mapHook refuses a scalar or a list where a map of keys is wanted, in the
// words of the other kind errors.
func mapHook(from, to reflect.Type, data any) (any, error) {
	if to.Kind() != reflect.Struct {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Map, reflect.Struct, reflect.Pointer, reflect.Interface:
		return data, nil
	}
	return nil, fmt.Errorf("want a map, got %s", withArticle(kind(from)))
}

// intHook converts to any integer type (int, int64, uint16, ...; not
// time.Duration, which durationHook has): it parses strings, as environment
// variables and flags give them, refuses fractions, which would otherwise
// be truncated, and refuses values out of the type's range, which would
// otherwise wrap.
func intHook(from, to reflect.Type, data any) (any, error) {
	if to == durationType || !isInt(to.Kind()) {
		return data, nil
	}
	v := reflect.ValueOf(data)
	out := reflect.New(to).Elem()
	switch {
	case from.Kind() == reflect.String:
		s := strings.TrimSpace(v.String())
		var err error
		if isUint(to.Kind()) {
			var n uint64
			n, err = strconv.ParseUint(s, 10, to.Bits())
			out.SetUint(n)
		} else {
			var n int64
			n, err = strconv.ParseInt(s, 10, to.Bits())
			out.SetInt(n)
		}
		if errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("%q is out of range for %s", data, to)
		} else if err != nil {
			return nil, fmt.Errorf("%q is not an integer", data)
		}
		return out.Interface(), nil
	case from.Kind() == reflect.Float32 || from.Kind() == reflect.Float64:
		f := v.Float()
		if f != math.Trunc(f) {
			return nil, fmt.Errorf("%v is not an integer", data)
		}
		if isUint(to.Kind()) {
			if f < 0 || f >= math.Exp2(64) || out.OverflowUint(uint64(f)) {
				return nil, fmt.Errorf("%v is out of range for %s", data, to)
			}
			out.SetUint(uint64(f))
		} else {
			if f < -math.Exp2(63) || f >= math.Exp2(63) || out.OverflowInt(int64(f)) {
				return nil, fmt.Errorf("%v is out of range for %s", data, to)
			}
			out.SetInt(int64(f))
		}
		return out.Interface(), nil
	case isUint(from.Kind()):
		n := v.Uint()
		if isUint(to.Kind()) && !out.OverflowUint(n) {
			out.SetUint(n)
			return out.Interface(), nil
		}
		if !isUint(to.Kind()) && n <= math.MaxInt64 && !out.OverflowInt(int64(n)) {
			out.SetInt(int64(n))
			return out.Interface(), nil
		}
		return nil, fmt.Errorf("%v is out of range for %s", data, to)
	case isInt(from.Kind()):
		n := v.Int()
		if !isUint(to.Kind()) && !out.OverflowInt(n) {
			out.SetInt(n)
			return out.Interface(), nil
		}
		if isUint(to.Kind()) && n >= 0 && !out.OverflowUint(uint64(n)) {
			out.SetUint(uint64(n))
			return out.Interface(), nil
		}
		return nil, fmt.Errorf("%v is out of range for %s", data, to)
	}
	return data, nil
}

func isInt(k reflect.Kind) bool {
	return (k >= reflect.Int && k <= reflect.Int64) || isUint(k)
}

func isUint(k reflect.Kind) bool {
	return k >= reflect.Uint && k <= reflect.Uintptr
}

// decodeErrors turns mapstructure's error tree into one error per key, named
// as in the YAML (pipelines.wordcount.module, not pipelines[wordcount].module).
func decodeErrors(err error) []*field.Error {
	var out []*field.Error
	var walk func(error)
	walk = func(err error) {
		de, isDecode := err.(*mapstructure.DecodeError)
		switch {
		case isDecode:
			name := indexRe.ReplaceAllString(de.Name(), ".$1")
			msg := de.Unwrap().Error()
			if ute, ok := errors.AsType[*mapstructure.UnconvertibleTypeError](de); ok {
				msg = fmt.Sprintf("want %s, got %s", withArticle(kind(ute.Expected.Type())), withArticle(kind(reflect.TypeOf(ute.Value))))
				if name == "pipelines" {
					msg += " (pipelines are keyed by name: {wordcount: {module: ..., inputs: [...]}})"
				}
			}
			if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
				for k := range strings.SplitSeq(keys, ", ") {
					out = append(out, field.Errorf(field.Join(name, k), "unknown key"))
				}
				return
			}
			out = append(out, field.Errorf(name, "%s", msg))
		default:
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					walk(e)
				}
				return
			}
			if u := errors.Unwrap(err); u != nil {
				walk(u) // koanf's and mapstructure's wrapping
				return
			}
			out = append(out, &field.Error{Msg: err.Error(), Err: err})
		}
	}
	walk(err)
	return out
}

// kind names the YAML kind of a Go type, for error messages.
func kind(t reflect.Type) string {
	if t == nil {
		return "null"
	}
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return kind(t.Elem())
	case reflect.Map, reflect.Struct:
		return "map"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	if isInt(t.Kind()) {
		return "integer"
	}
	return t.String()
}

// withArticle returns a kind with its indefinite article: "an integer", "a
// map"; null has none.
func withArticle(kind string) string {
	switch {
	case kind == "null":
		return kind
	case strings.ContainsRune("aeiou", rune(kind[0])):
		return "an " + kind
	}
	return "a " + kind
}
