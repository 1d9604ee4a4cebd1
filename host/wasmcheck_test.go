package host

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/abi"
)

func TestTableLimit(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "table_grow", Limits{MemoryMB: 1})
	i := instantiate(t, m, InstanceConfig{DB: openDB(t, "s1")})
	_, err := i.Process(t.Context(), []abi.Record{{Topic: "in"}}, nil)
	var ge *GuestError
	switch {
	case errors.As(err, &ge) && ge.Code == 1:
		t.Fatal("table.grow within the limit failed")
	case errors.As(err, &ge) && ge.Code == 2:
		t.Fatal("table.grow of 50M elements succeeded: the host allocated 400 MB for a guest with memory_mb 1")
	case err != nil:
		t.Fatal(err)
	}
}

func TestCompileRefusesTablesAndGlobals(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	tests := []struct {
		name string
		want error
		text []string
	}{
		{name: "big_table", want: ErrInvalidModule, text: []string{"1100000 elements", "limit of 1048576"}},
		{name: "import_global", want: ErrUnknownImport, text: []string{"global env.g", "table env.t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rt.Compile(t.Context(), tt.name, wasmOf(t, tt.name), Limits{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Compile = %v, want %v", err, tt.want)
			}
			for _, s := range append(tt.text, tt.name) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestPrepareModule(t *testing.T) {
	header := string(wasmHeader)
	tests := []struct {
		name     string
		in       string
		want     string // the output, when the module is accepted
		problem  error
		unparsed bool
	}{
		{name: "no sections", in: header, want: header},
		{name: "table without max", in: header + "\x04\x04\x01\x70\x00\x05",
			want: header + "\x04\x07\x01\x70\x01\x05" + string(appendU32(nil, maxTableElements))},
		{name: "small max kept", in: header + "\x04\x05\x01\x70\x01\x01\x02", want: header + "\x04\x05\x01\x70\x01\x01\x02"},
		{name: "room shared", in: header + "\x04\x07\x02\x70\x00\x00\x6f\x00\x00",
			want: header + "\x04\x0d\x02\x70\x01\x00" + string(appendU32(nil, maxTableElements/2)) + "\x6f\x01\x00" + string(appendU32(nil, maxTableElements/2))},
		{name: "other sections copied", in: header + "\x00\x03\x01x\x07\x05\x01\x70\x00\x00", want: header + "\x00\x03\x01x\x07\x05\x01\x70\x00\x00"},
		{name: "table with initializer", in: header + "\x04\x06\x01\x40\x00\x70\x00\x01", problem: ErrInvalidModule},
		{name: "64-bit table", in: header + "\x04\x04\x01\x70\x04\x01", problem: ErrInvalidModule},
		{name: "section past the end", in: header + "\x04\x09\x01", unparsed: true},
		{name: "overlong size", in: header + "\x04\xff\xff\xff\xff\xff", unparsed: true},
		{name: "short header", in: "\x00asm", unparsed: true},
		{name: "trailing table bytes", in: header + "\x04\x05\x01\x70\x00\x05\x00", unparsed: true},
		{name: "unknown import kind", in: header + "\x02\x05\x01\x00\x00\x09\x00", unparsed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, problems, err := prepareModule([]byte(tt.in))
			if errors.Is(err, errUnparsed) != tt.unparsed {
				t.Fatalf("err = %v, want unparsed %v", err, tt.unparsed)
			}
			if tt.unparsed {
				return
			}
			if tt.problem != nil {
				if len(problems) != 1 || !errors.Is(problems[0], tt.problem) {
					t.Fatalf("problems %v, want %v", problems, tt.problem)
				}
				return
			}
			if len(problems) > 0 {
				t.Fatalf("problems %v", problems)
			}
			if string(out) != tt.want {
				t.Fatalf("out\n got %x\nwant %x", out, tt.want)
			}
		})
	}
}

// FuzzPrepareModule checks that no input makes the module walk panic, and
// that what it accepts has tables within the limit.
func FuzzPrepareModule(f *testing.F) {
	f.Add(append([]byte{}, wasmHeader...))
	f.Add([]byte(string(wasmHeader) + "\x04\x04\x01\x70\x00\x05"))
	f.Add([]byte(string(wasmHeader) + "\x02\x0b\x01\x03env\x01g\x03\x7f\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, problems, err := prepareModule(b)
		if err != nil || len(problems) > 0 {
			return
		}
		if _, again, err := prepareModule(out); err != nil || len(again) > 0 {
			t.Fatalf("the prepared module is refused: %v %v", err, again)
		}
	})
}

func TestHostPanicIsInternal(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	m := compile(t, rt, "probe", Limits{})
	i := instantiate(t, m, InstanceConfig{DB: openDB(t, "s1")})
	var panicked error
	func() {
		defer func() { panicked = recover().(runtime.Error) }()
		var s []int
		_ = s[len(s)+1]
	}()
	// What wazero returns for a panic in a host function.
	err := i.callErr(t.Context(), fmt.Errorf("%w (recovered by wazero)\nwasm stack trace:\n\tflowstate.kv_get", panicked))
	if !errors.Is(err, ErrInternal) || errors.Is(err, ErrTrap) {
		t.Fatalf("callErr = %v, want ErrInternal and not ErrTrap", err)
	}
}
