package main

import (
	"strconv"
	"strings"
	"testing"
)

func TestFormatTable(t *testing.T) {
	many := map[string][]byte{}
	for i := range 25 {
		many["w"+strconv.Itoa(i)] = []byte(strconv.Itoa(i))
	}
	tests := []struct {
		name    string
		latest  map[string][]byte
		records int
		top     int
		want    string
	}{
		{
			name:    "numbers by value then key, right-aligned",
			latest:  map[string][]byte{"the": []byte("329"), "and": []byte("112"), "a": []byte("86"), "of": []byte("86"), "zebra": []byte("1")},
			records: 614,
			top:     20,
			want: `
KEY    VALUE
the      329
and      112
a         86
of        86
zebra      1
5 distinct keys, 614 records
`,
		},
		{
			name:    "top n",
			latest:  many,
			records: 25,
			top:     3,
			want: `
KEY  VALUE
w24     24
w23     23
w22     22
... and 22 more
25 distinct keys, 25 records
`,
		},
		{
			name:    "text by key, left-aligned",
			latest:  map[string][]byte{"u2": []byte("logged out"), "u1": []byte("12"), "": []byte("x")},
			records: 1,
			top:     20,
			want: `
KEY  VALUE
""   x
u1   12
u2   logged out
3 distinct keys, 1 record
`,
		},
		{
			name:    "binary is quoted",
			latest:  map[string][]byte{"k": {0, 0, 0, 7}},
			records: 2,
			top:     20,
			want: `
KEY  VALUE
k    "\x00\x00\x00\a"
1 distinct key, 2 records
`,
		},
		{
			name:    "decimals and signs",
			latest:  map[string][]byte{"a": []byte("-1.5"), "b": []byte("+2"), "c": []byte("0.25")},
			records: 3,
			top:     20,
			want: `
KEY  VALUE
b       +2
c     0.25
a     -1.5
3 distinct keys, 3 records
`,
		},
		{
			name: "empty",
			want: `
0 distinct keys, 0 records
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := formatTable(&b, tt.latest, tt.records, tt.top); err != nil {
				t.Fatal(err)
			}
			want := strings.TrimPrefix(tt.want, "\n")
			if got := b.String(); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}
