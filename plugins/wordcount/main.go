// Command wordcount is a flowstate processor that counts the words of
// sentences. It works in two stages, so that each word is counted by
// exactly one task whatever the number of partitions:
//
//   - A record of any input topic but "words" carries a sentence in its
//     value. It is split on white space; each word is lower-cased, stripped
//     of leading and trailing punctuation and, unless that leaves it empty,
//     emitted to topic "words" with the word as key and "1" as value. The
//     host partitions output by key, so every record of a word reaches the
//     same task.
//   - A record of topic "words" adds one to the count of its key in store
//     "counts" (8-byte big-endian int64) and emits the new count to topic
//     "word-counts": key the word, value the count in decimal ASCII, so
//     kcat shows it readably. Records with an empty or null key are skipped.
//
// The pipeline declares:
//
//	inputs:  [sentences, words]  # co-partitioned
//	outputs: [words, word-counts]
//	stores:  [counts]
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bin/plugins/wordcount.wasm ./plugins/wordcount
package main

import (
	"strconv"
	"strings"
	"unicode"

	"github.com/flowstate/flowstate/sdk"
)

// Topic names.
const (
	wordsTopic  = "words"
	countsTopic = "word-counts"
)

var counts = sdk.Store("counts")

func init() { sdk.OnRecord(process) }

func process(r sdk.Record, out sdk.Out) error {
	if r.Topic == wordsTopic {
		return count(r.Key, out)
	}
	return split(r.Value, out)
}

var one = []byte("1")

// split emits each word of sentence to the words topic.
func split(sentence []byte, out sdk.Out) error {
	for _, w := range strings.Fields(string(sentence)) {
		w = strings.ToLower(strings.TrimFunc(w, unicode.IsPunct))
		if w == "" {
			continue
		}
		if err := out.Emit(wordsTopic, []byte(w), one); err != nil {
			return err
		}
	}
	return nil
}

// decimal holds the text of the last count emitted.
var decimal []byte

// count adds one to word's count and emits the new count.
func count(word []byte, out sdk.Out) error {
	if len(word) == 0 {
		return nil
	}
	n, err := counts.GetInt64(word)
	if err != nil {
		return err
	}
	n++
	if err := counts.PutInt64(word, n); err != nil {
		return err
	}
	decimal = strconv.AppendInt(decimal[:0], n, 10)
	return out.Emit(countsTopic, word, decimal)
}

func main() {}
