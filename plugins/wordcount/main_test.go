package main

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/flowstate/flowstate/sdk"
	"github.com/flowstate/flowstate/sdk/sdktest"
)

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(sdktest.Config{Stores: []string{"counts"}, Topics: []string{"words", "word-counts"}})
	t.Cleanup(h.Close)
	return h
}

func be(n int64) string { return string(sdk.Int64Bytes(n)) }

func TestWordcount(t *testing.T) {
	tests := []struct {
		name      string
		sentences []string
		wantWords []string // keys emitted to words, in order
		wantOut   []string // word-counts emits, in order
		wantStore map[string]string
	}{
		{
			name:      "simple",
			sentences: []string{"the cat saw the dog"},
			wantWords: []string{"the", "cat", "saw", "the", "dog"},
			wantOut:   []string{"the=1", "cat=1", "saw=1", "the=2", "dog=1"},
			wantStore: map[string]string{"the": be(2), "cat": be(1), "saw": be(1), "dog": be(1)},
		},
		{
			name:      "case and punctuation",
			sentences: []string{`Hello, World! "hello" (world)...`, "don't—stop HELLO?"},
			wantWords: []string{"hello", "world", "hello", "world", "don't—stop", "hello"},
			wantOut:   []string{"hello=1", "world=1", "hello=2", "world=2", "don't—stop=1", "hello=3"},
			wantStore: map[string]string{"hello": be(3), "world": be(2), "don't—stop": be(1)},
		},
		{
			name:      "unicode and white space",
			sentences: []string{"Été\tÉTÉ\n  «été»\u00a0Ünïcode"},
			wantWords: []string{"été", "été", "été", "ünïcode"},
			wantOut:   []string{"été=1", "été=2", "été=3", "ünïcode=1"},
			wantStore: map[string]string{"été": be(3), "ünïcode": be(1)},
		},
		{
			name:      "nothing to count",
			sentences: []string{"", "   ", "... !! -- ?", "\u2014"},
			wantStore: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			// Stage one: sentences, one batch.
			var recs []sdk.Record
			for _, s := range tt.sentences {
				recs = append(recs, h.Record("sentences", "", s))
			}
			if err := h.Process(recs...); err != nil {
				t.Fatal(err)
			}
			words := h.TakeEmits()
			var keys []string
			for _, e := range words {
				if e.Topic != "words" || string(e.Value) != "1" {
					t.Fatalf("stage one emitted %v", e)
				}
				keys = append(keys, string(e.Key))
			}
			if !slices.Equal(keys, tt.wantWords) {
				t.Fatalf("words = %q, want %q", keys, tt.wantWords)
			}
			// Stage two: the words come back from the words topic, one
			// batch each, as Kafka would deliver them.
			for _, e := range words {
				if err := h.Feed("words", string(e.Key), string(e.Value)); err != nil {
					t.Fatal(err)
				}
			}
			var out []string
			for _, e := range h.TakeEmits() {
				if e.Topic != "word-counts" {
					t.Fatalf("stage two emitted %v", e)
				}
				out = append(out, string(e.Key)+"="+string(e.Value))
			}
			if !slices.Equal(out, tt.wantOut) {
				t.Fatalf("word-counts = %q, want %q", out, tt.wantOut)
			}
			if got := h.Store("counts"); !maps.Equal(got, tt.wantStore) {
				t.Fatalf("counts = %q, want %q", got, tt.wantStore)
			}
		})
	}
}

func TestCountsWords(t *testing.T) {
	h := newHarness(t)
	h.Put("counts", "a", sdk.Int64Bytes(41))
	// One batch: later records see the writes of earlier ones.
	if err := h.Process(h.Record("words", "a", "1"), h.Record("words", "b", "1"), h.Record("words", "a", "1"),
		h.Record("words", "", "1"), sdk.Record{Topic: "words", Offset: 9}); err != nil {
		t.Fatal(err)
	}
	want := []string{`word-counts "a"="42"`, `word-counts "b"="1"`, `word-counts "a"="43"`}
	if got := sdktest.Strings(h.Emits()); !slices.Equal(got, want) {
		t.Fatalf("emits = %q, want %q", got, want)
	}
	if n, ok := h.Int64("counts", "a"); n != 43 || !ok {
		t.Fatalf("counts[a] = %d %v", n, ok)
	}
}

func TestUndeclaredOutput(t *testing.T) {
	h := sdktest.New(sdktest.Config{Stores: []string{"counts"}, Topics: []string{"word-counts"}})
	t.Cleanup(h.Close)
	err := h.Feed("sentences", "", "hello world")
	if err == nil || !strings.Contains(err.Error(), "sentences/0@0: sdk: topic_open words: abi: NOT_FOUND") {
		t.Fatalf("err = %v", err)
	}
	if got := h.Emits(); len(got) != 0 {
		t.Fatalf("emits = %v", got)
	}
}
