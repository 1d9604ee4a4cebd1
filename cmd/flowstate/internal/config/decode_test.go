package config

import (
	"reflect"
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
