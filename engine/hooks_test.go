package engine

import "testing"

func TestInputLag(t *testing.T) {
	tests := []struct {
		name    string
		fetched map[string]int64 // high watermarks
		next    map[string]int64 // positions
		want    int64
	}{
		{"nothing fetched", nil, map[string]int64{"a": 5}, 0},
		{"position unknown", map[string]int64{"a": 10}, nil, 0},
		{"behind", map[string]int64{"a": 10}, map[string]int64{"a": 4}, 6},
		{"caught up", map[string]int64{"a": 10}, map[string]int64{"a": 10}, 0},
		{"ahead of an old fetch", map[string]int64{"a": 10}, map[string]int64{"a": 12}, 0},
		{"co-partitioned inputs add up", map[string]int64{"a": 10, "b": 7}, map[string]int64{"a": 8, "b": 2}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l inputLag
			for topic, hwm := range tt.fetched {
				l.fetched(topic, hwm)
			}
			if tt.next != nil {
				l.processed(tt.next)
			}
			if got := l.lag(); got != tt.want {
				t.Errorf("lag = %d, want %d", got, tt.want)
			}
		})
	}
}
