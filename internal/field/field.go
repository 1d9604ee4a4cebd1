package field

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one invalid field.
type Error struct {
	// Key is the field's config key, dotted: pipelines.wordcount.limits.memory_mb
	// once every enclosing Validate has nested it. Empty when the holder of
	// the value is to name it.
	Key string
	// Msg says what is wrong with the value, without the key:
	// `"gzip" is not one of [lz4 none snappy zstd]`.
	Msg string
	// Err is a sentinel the error wraps (state.ErrInvalidConfig), or nil.
	Err error
}

// Errorf returns an *Error for key with a formatted message.
func Errorf(key, format string, args ...any) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Error returns "key: msg", or msg alone when Key is empty.
func (e *Error) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// List is the errors of one Validate, in the order found. A nil List is no
// error: return List.Err, not the List, from a func returning error.
type List []*Error

// Error returns the errors one per line.
func (l List) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Err returns l, or nil when l is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Add appends an error for key with a formatted message.
func (l *List) Add(key, format string, args ...any) {
	*l = append(*l, Errorf(key, format, args...))
}

// Nest appends the field errors of err (see Errors) with their keys nested
// under prefix. A nil err appends nothing.
func (l *List) Nest(prefix string, err error) {
	for _, e := range Errors(err) {
		c := *e
		c.Key = Join(prefix, e.Key)
		*l = append(*l, &c)
	}
}

// Join returns key nested under prefix: Join("pipelines.p", "limits") is
// "pipelines.p.limits"; either may be empty.
func Join(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	}
	return prefix + "." + key
}

// Errors returns the field errors in err: err itself if it is an *Error,
// the errors of a List or of errors.Join, recursively, and the *Error that
// a wrapped error (fmt.Errorf with %w) holds. Any other error becomes an
// *Error with an empty Key, its text as Msg, wrapping it. Errors(nil) is
// nil.
func Errors(err error) []*Error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	if fe, ok := errors.AsType[*Error](err); ok {
		return []*Error{fe}
	}
	return []*Error{{Msg: err.Error(), Err: err}}
}
