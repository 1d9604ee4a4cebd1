package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/engine"
	"github.com/flowstate/flowstate/state"
)

// TestEveryFieldTagged checks that every exported field of the config
// structs the loader decodes into has a koanf tag: an untagged field would
// be decoded by its Go name, a key nobody documented.
func TestEveryFieldTagged(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, at string) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			sf := typ.Field(i)
			if !sf.IsExported() {
				continue
			}
			tag, ok := sf.Tag.Lookup("koanf")
			if !ok {
				t.Errorf("%s.%s has no koanf tag", at, sf.Name)
				continue
			}
			ft := sf.Type
			for ft.Kind() == reflect.Map || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && tag != "-" {
				walk(ft, ft.String())
			}
		}
	}
	walk(reflect.TypeFor[fileConfig](), "fileConfig")
	for _, typ := range []reflect.Type{reflect.TypeFor[engine.Pipeline](), reflect.TypeFor[state.StoreOptions]()} {
		if !seen[typ] {
			t.Errorf("%s not reached", typ)
		}
	}
}

func TestIntHook(t *testing.T) {
	for _, tt := range []struct {
		name string
		to   reflect.Type
		in   any
		want any    // nil when an error is wanted
		err  string // substring of the error
	}{
		{name: "string to int", to: reflect.TypeFor[int](), in: "42", want: 42},
		{name: "string to int64", to: reflect.TypeFor[int64](), in: "5000", want: int64(5000)},
		{name: "string to int8", to: reflect.TypeFor[int8](), in: "-7", want: int8(-7)},
		{name: "string to uint16", to: reflect.TypeFor[uint16](), in: "65535", want: uint16(65535)},
		{name: "string to a named int", to: reflect.TypeFor[fdCount](), in: "3", want: fdCount(3)},
		{name: "spaces", to: reflect.TypeFor[int32](), in: " 9 ", want: int32(9)},
		{name: "float to int64", to: reflect.TypeFor[int64](), in: 2.0, want: int64(2)},
		{name: "int to int16", to: reflect.TypeFor[int16](), in: 300, want: int16(300)},
		{name: "not a number", to: reflect.TypeFor[int64](), in: "lots", err: `"lots" is not an integer`},
		{name: "fraction", to: reflect.TypeFor[int](), in: 1.5, err: "1.5 is not an integer"},
		{name: "string out of range", to: reflect.TypeFor[int8](), in: "200", err: `"200" is out of range for int8`},
		{name: "negative to uint", to: reflect.TypeFor[uint](), in: "-1", err: "is not an integer"},
		{name: "int out of range", to: reflect.TypeFor[int8](), in: 300, err: "300 is out of range for int8"},
		{name: "float out of range", to: reflect.TypeFor[int32](), in: 1e12, err: "out of range for int32"},
		{name: "negative int to uint", to: reflect.TypeFor[uint32](), in: -1, err: "-1 is out of range for uint32"},
		{name: "duration left alone", to: durationType, in: "1s", want: "1s"},
		{name: "bool left alone", to: reflect.TypeFor[int](), in: true, want: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := intHook(reflect.TypeOf(tt.in), tt.to, tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("intHook = %v, %v; want error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("intHook = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

// fdCount is a named integer type, as config fields may have.
type fdCount uint8
