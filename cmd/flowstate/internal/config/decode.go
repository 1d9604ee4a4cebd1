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
			durationHook,
			listHook,
			intHook,
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
		return nil, fmt.Errorf("want a duration such as 500ms, 5s or 1m, got a %s", k)
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

// intHook parses integers from strings, as environment variables and flags
// give them, and refuses fractions, which would otherwise be truncated.
func intHook(from, to reflect.Type, data any) (any, error) {
	if to.Kind() != reflect.Int {
		return data, nil
	}
	if from.Kind() == reflect.Float64 || from.Kind() == reflect.Float32 {
		f := reflect.ValueOf(data).Float()
		if f != math.Trunc(f) {
			return nil, fmt.Errorf("%v is not an integer", data)
		}
		return int(f), nil
	}
	if from.Kind() != reflect.String {
		return data, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(data.(string)))
	if err != nil {
		return nil, fmt.Errorf("%q is not an integer", data)
	}
	return n, nil
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
				msg = fmt.Sprintf("want a %s, got a %s", kind(ute.Expected.Type()), kind(reflect.TypeOf(ute.Value)))
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
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	}
	return t.String()
}
