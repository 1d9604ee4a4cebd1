// Command go is the Go SDK's implementation of the conformance processor
// (conformance/SPEC.md): each input record's value is a command (put, get,
// delete, range, emit, log, fail, ...) run through the SDK, with its result
// emitted to topic "results".
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/sdk"
)

func init() { sdk.OnRecord(process) }

func main() {}

// stores are the handles of the stores the scripts name, resolved on first
// use; an undeclared store's handle fails every call with NOT_FOUND.
var stores = map[string]*sdk.KV{}

func store(name []byte) *sdk.KV {
	s, ok := stores[string(name)]
	if !ok {
		s = sdk.Store(string(name))
		stores[string(name)] = s
	}
	return s
}

// errBadCommand fails the batch of a record that is not a command.
var errBadCommand = errors.New("bad command")

func process(r sdk.Record, out sdk.Out) error {
	words, err := decodeWords(r.Value)
	if err != nil || len(words) == 0 {
		return errBadCommand
	}
	name, args := string(words[0]), words[1:]
	arity, ok := arities[name]
	if !ok || (arity >= 0 && len(args) != arity) || (name == "emit" && (len(args) < 3 || len(args)%2 == 0)) {
		return errBadCommand
	}
	result := func(s string) error { return out.Emit("results", r.Key, []byte(s)) }
	var res string
	switch name {
	case "put":
		err = store(args[0]).Put(args[1], args[2])
	case "putn":
		n, perr := strconv.Atoi(string(args[2]))
		if perr != nil || n < 0 {
			return errBadCommand
		}
		err = store(args[0]).Put(args[1], pattern(n))
	case "get":
		v, found, gerr := store(args[0]).Get(args[1])
		err = gerr
		res = "absent"
		if found {
			res = "found " + enc(v)
		}
	case "checkn":
		v, found, gerr := store(args[0]).Get(args[1])
		err = gerr
		switch {
		case !found:
			res = "absent"
		case string(v) == string(pattern(len(v))):
			res = "pattern " + strconv.Itoa(len(v))
		default:
			res = "other " + strconv.Itoa(len(v))
		}
	case "delete":
		err = store(args[0]).Delete(args[1])
	case "count":
		s := store(args[0])
		n, gerr := s.GetInt64(args[1])
		if err = gerr; err == nil {
			err = s.PutInt64(args[1], n+1)
			res = "count " + strconv.FormatInt(n+1, 10)
		}
	case "range", "rangen":
		res, err = rangeOf(store(args[0]), args[1], args[2], name == "rangen")
	case "emit":
		var hs []sdk.Header
		for k := 3; k < len(args); k += 2 {
			if args[k] == nil {
				return errBadCommand
			}
			hs = append(hs, sdk.Header{Key: string(args[k]), Value: args[k+1]})
		}
		err = out.EmitRecord(string(args[0]), args[1], args[2], hs)
	case "record":
		res = describe(r)
	case "log":
		log, ok := logs[string(args[0])]
		if !ok {
			return errBadCommand
		}
		log(string(args[1]))
	case "fail":
		return errors.New("fail command: " + string(args[0]))
	}
	if err != nil {
		return result("error " + codeName(err))
	}
	if res != "" {
		return result(res)
	}
	return nil
}

// arities gives each command's number of arguments; -1 is variable.
var arities = map[string]int{
	"put": 3, "putn": 3, "get": 2, "checkn": 2, "delete": 2, "count": 2,
	"range": 3, "rangen": 3, "emit": -1, "record": 0, "log": 2, "fail": 1,
}

var logs = map[string]func(string){"debug": sdk.Debug, "info": sdk.Info, "warn": sdk.Warn, "error": sdk.Error}

// rangeOf runs a range command.
func rangeOf(s *sdk.KV, start, end []byte, lengths bool) (string, error) {
	it := s.Range(start, end) // nil and empty bounds are both open
	defer it.Close()
	var b strings.Builder
	b.WriteString("range")
	if lengths {
		b.WriteString("n")
	}
	for it.Next() {
		b.WriteByte(' ')
		b.WriteString(enc(it.Key()))
		b.WriteByte('=')
		if lengths {
			b.WriteString(strconv.Itoa(len(it.Value())))
		} else {
			b.WriteString(enc(it.Value()))
		}
	}
	return b.String(), it.Err()
}

// describe is the result of the record command.
func describe(r sdk.Record) string {
	var b strings.Builder
	b.WriteString("record ")
	b.WriteString(enc([]byte(r.Topic)))
	for _, n := range []int64{int64(r.Partition), r.Offset, r.Timestamp} {
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(n, 10))
	}
	b.WriteByte(' ')
	b.WriteString(encNullable(r.Key))
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(r.Headers)))
	for _, h := range r.Headers {
		b.WriteByte(' ')
		b.WriteString(enc([]byte(h.Key)))
		b.WriteByte(' ')
		b.WriteString(encNullable(h.Value))
	}
	return b.String()
}

// codeName returns the ABI name of the code behind err, or "?".
func codeName(err error) string {
	var e *abi.Error
	if errors.As(err, &e) {
		return e.Code.String()
	}
	return "?"
}

// pattern returns the n-byte value of putn.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// decodeWords splits a command into its percent-decoded words; "~" is nil
// and "=" is empty.
func decodeWords(v []byte) ([][]byte, error) {
	var words [][]byte
	for w := range strings.SplitSeq(string(v), " ") {
		switch w {
		case "~":
			words = append(words, nil)
			continue
		case "=":
			words = append(words, []byte{})
			continue
		}
		b := make([]byte, 0, len(w))
		for i := 0; i < len(w); i++ {
			if w[i] != '%' {
				b = append(b, w[i])
				continue
			}
			if i+2 >= len(w) {
				return nil, errBadCommand
			}
			n, err := strconv.ParseUint(w[i+1:i+3], 16, 8)
			if err != nil {
				return nil, errBadCommand
			}
			b = append(b, byte(n))
			i += 2
		}
		words = append(words, b)
	}
	return words, nil
}

const hex = "0123456789ABCDEF"

// enc writes b for a result: printable ASCII other than %, = and ~ as
// itself, every other byte as %XX, and the empty string as "=".
func enc(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	var s strings.Builder
	for _, c := range b {
		if c > 0x20 && c < 0x7f && c != '%' && c != '=' && c != '~' {
			s.WriteByte(c)
			continue
		}
		s.WriteByte('%')
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String()
}

func encNullable(b []byte) string {
	if b == nil {
		return "~"
	}
	return enc(b)
}
