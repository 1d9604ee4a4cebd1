package host

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	defaults := Limits{
		MemoryMB: 128, CallTimeout: 5 * time.Second, MaxOutputRecords: 100_000, MaxOutputBytes: 64 << 20,
		MaxKeyBytes: 64 << 10, MaxValueBytes: 1 << 20, MaxOpenIterators: 16,
	}
	tests := []struct {
		name    string
		lim     Limits
		want    Limits
		wantErr []string // config names in the error, none when valid
	}{
		{name: "defaults", want: defaults},
		{name: "set", lim: Limits{MemoryMB: 4096, CallTimeout: time.Millisecond, MaxOutputRecords: 1, MaxOutputBytes: 1, MaxKeyBytes: 1, MaxValueBytes: 1, MaxOpenIterators: 1},
			want: Limits{MemoryMB: 4096, CallTimeout: time.Millisecond, MaxOutputRecords: 1, MaxOutputBytes: 1, MaxKeyBytes: 1, MaxValueBytes: 1, MaxOpenIterators: 1}},
		{name: "memory too large", lim: Limits{MemoryMB: 4097}, wantErr: []string{"memory_mb"}},
		{name: "negatives", lim: Limits{MemoryMB: -1, CallTimeout: -time.Second, MaxOutputRecords: -1, MaxOutputBytes: -1, MaxKeyBytes: -1, MaxValueBytes: -1, MaxOpenIterators: -1},
			wantErr: []string{"memory_mb", "call_timeout", "max_output_records", "max_output_bytes", "max_key_bytes", "max_value_bytes", "max_open_iterators"}},
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
