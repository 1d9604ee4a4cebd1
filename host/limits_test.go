package host

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowstate/flowstate/internal/field"
)

func TestLimits(t *testing.T) {
	defaults := Limits{
		MemoryMB: 128, CallTimeout: 5 * time.Second, MaxOutputRecords: 100_000, MaxOutputBytes: 64 << 20,
		MaxKeyBytes: 64 << 10, MaxValueBytes: 1 << 20, MaxOpenIterators: 16, MaxWriteBytes: 64 << 20,
	}
	tests := []struct {
		name    string
		lim     Limits
		want    Limits
		wantErr []string // config names in the error, none when valid
	}{
		{name: "defaults", want: defaults},
		{name: "set", lim: Limits{MemoryMB: 4096, CallTimeout: time.Millisecond, MaxOutputRecords: 1, MaxOutputBytes: 1, MaxKeyBytes: 1, MaxValueBytes: 1, MaxOpenIterators: 1, MaxWriteBytes: 1},
			want: Limits{MemoryMB: 4096, CallTimeout: time.Millisecond, MaxOutputRecords: 1, MaxOutputBytes: 1, MaxKeyBytes: 1, MaxValueBytes: 1, MaxOpenIterators: 1, MaxWriteBytes: 1}},
		{name: "memory too large", lim: Limits{MemoryMB: 4097}, wantErr: []string{"memory_mb"}},
		{name: "negatives", lim: Limits{MemoryMB: -1, CallTimeout: -time.Second, MaxOutputRecords: -1, MaxOutputBytes: -1, MaxKeyBytes: -1, MaxValueBytes: -1, MaxOpenIterators: -1, MaxWriteBytes: -1},
			wantErr: []string{"memory_mb", "call_timeout", "max_output_records", "max_output_bytes", "max_key_bytes", "max_value_bytes", "max_open_iterators", "max_write_bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := tt.lim
			lim.EnsureDefaults()
			err := lim.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if lim != tt.want {
					t.Fatalf("EnsureDefaults = %+v, want %+v", lim, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidLimits) {
				t.Fatalf("Validate = %v, want ErrInvalidLimits", err)
			}
			for _, name := range tt.wantErr {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
		})
	}
}

// TestLimitsValidateKeys checks that Validate returns one *field.Error per
// bad field, keyed by its config key, each wrapping ErrInvalidLimits.
func TestLimitsValidateKeys(t *testing.T) {
	lim := Limits{MemoryMB: 0, CallTimeout: -1, MaxOutputRecords: 1, MaxOutputBytes: 1, MaxKeyBytes: 0, MaxValueBytes: 1, MaxOpenIterators: -3, MaxWriteBytes: 1}
	err := lim.Validate()
	var got []string
	for _, e := range field.Errors(err) {
		if !errors.Is(e, ErrInvalidLimits) {
			t.Errorf("%v does not wrap ErrInvalidLimits", e)
		}
		got = append(got, e.Error())
	}
	want := []string{
		"memory_mb: 0 is not in [1, 4096]",
		"call_timeout: -1ns is not positive",
		"max_key_bytes: 0 is not positive",
		"max_open_iterators: -3 is not positive",
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}
