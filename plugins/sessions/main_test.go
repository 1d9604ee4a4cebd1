package main

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/sdk"
	"github.com/flowstate/flowstate/sdk/sdktest"
)

// ev is one input record: user and event.
type ev struct{ user, event string }

func eventKeyOf(user string, off int64) string {
	return user + "\x00" + strings.Repeat("0", 19-len(strconv.FormatInt(off, 10))) + strconv.FormatInt(off, 10)
}

func TestSessions(t *testing.T) {
	hundred := make([]ev, 101)
	var names []string
	for i := range hundred {
		hundred[i] = ev{"u", "e" + strconv.Itoa(i)}
		if i < 100 {
			names = append(names, hundred[i].event)
		}
	}
	tests := []struct {
		name      string
		events    []ev
		want      []string // emits
		wantStore map[string]string
	}{
		{
			name:      "login to logout",
			events:    []ev{{"alice", "login"}, {"alice", "click"}, {"alice", "logout"}},
			want:      []string{`sessions "alice"="3 events: login,click,logout"`},
			wantStore: map[string]string{},
		},
		{
			name:   "users interleaved",
			events: []ev{{"a", "login"}, {"b", "login"}, {"a", "view"}, {"b", "logout"}, {"a", "buy"}},
			want:   []string{`sessions "b"="2 events: login,logout"`},
			wantStore: map[string]string{
				eventKeyOf("a", 0): "login", eventKeyOf("a", 2): "view", eventKeyOf("a", 4): "buy",
				"a\x01": string(sdk.Int64Bytes(3)),
			},
		},
		{
			name:      "logout alone",
			events:    []ev{{"x", "logout"}},
			want:      []string{`sessions "x"="1 event: logout"`},
			wantStore: map[string]string{},
		},
		{
			name:   "a prefix of another user",
			events: []ev{{"ab", "login"}, {"a", "login"}, {"a", "logout"}, {"", "login"}, {"", "logout"}},
			want:   []string{`sessions "a"="2 events: login,logout"`, `sessions ""="2 events: login,logout"`},
			wantStore: map[string]string{
				eventKeyOf("ab", 0): "login", "ab\x01": string(sdk.Int64Bytes(1)),
			},
		},
		{
			name:   "a new session after logout",
			events: []ev{{"a", "login"}, {"a", "logout"}, {"a", "login"}},
			want:   []string{`sessions "a"="2 events: login,logout"`},
			wantStore: map[string]string{
				eventKeyOf("a", 2): "login", "a\x01": string(sdk.Int64Bytes(1)),
			},
		},
		{
			name:   "100 events close a session",
			events: hundred,
			want:   []string{`sessions "u"="100 events: ` + strings.Join(names, ",") + `"`},
			wantStore: map[string]string{
				eventKeyOf("u", 100): "e100", "u\x01": string(sdk.Int64Bytes(1)),
			},
		},
	}
	for _, tt := range tests {
		for _, oneBatch := range []bool{false, true} {
			name := tt.name + "/record per batch"
			if oneBatch {
				name = tt.name + "/one batch"
			}
			t.Run(name, func(t *testing.T) {
				h := sdktest.New(sdktest.Config{Stores: []string{"events"}, Topics: []string{"sessions"}})
				t.Cleanup(h.Close)
				var recs []sdk.Record
				for _, e := range tt.events {
					recs = append(recs, h.Record("clicks", e.user, e.event))
				}
				if oneBatch {
					if err := h.Process(recs...); err != nil {
						t.Fatal(err)
					}
				} else {
					for _, r := range recs {
						if err := h.Process(r); err != nil {
							t.Fatal(err)
						}
					}
				}
				if got := sdktest.Strings(h.Emits()); !slices.Equal(got, tt.want) {
					t.Fatalf("emits = %q\nwant %q", got, tt.want)
				}
				if got := h.Store("events"); !maps.Equal(got, tt.wantStore) {
					t.Fatalf("store = %q\nwant %q", got, tt.wantStore)
				}
			})
		}
	}
}

func TestSkipped(t *testing.T) {
	h := sdktest.New(sdktest.Config{Stores: []string{"events"}, Topics: []string{"sessions"}})
	t.Cleanup(h.Close)
	recs := []sdk.Record{
		{Topic: "clicks", Offset: 0, Key: nil, Value: []byte("logout")},
		{Topic: "clicks", Offset: 1, Key: []byte("a"), Value: nil},
		{Topic: "clicks", Offset: 2, Key: []byte("a\x00b"), Value: []byte("logout")},
	}
	if err := h.Process(recs...); err != nil {
		t.Fatal(err)
	}
	if got := h.Emits(); len(got) != 0 {
		t.Fatalf("emits = %v", got)
	}
	if got := h.Store("events"); len(got) != 0 {
		t.Fatalf("store = %q", got)
	}
	if got := len(h.Logs()); got != 3 {
		t.Fatalf("%d warnings, want 3: %v", got, h.Logs())
	}
}

func TestAppendPadded(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0000000000000000000"},
		{42, "0000000000000000042"},
		{9223372036854775807, "9223372036854775807"},
	}
	for _, tt := range tests {
		if got := string(appendPadded([]byte("x"), tt.n, 19)); got != "x"+tt.want {
			t.Errorf("appendPadded(%d) = %q", tt.n, got)
		}
	}
}
