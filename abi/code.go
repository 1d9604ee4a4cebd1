package abi

import "strconv"

// Code is the i32 a host function returns: 0 or positive on success, one of
// the negative codes below on error. Codes keep their number and meaning in
// every ABI version.
type Code int32

// The error codes of SPEC.md.
const (
	OK             Code = 0
	NotFound       Code = -1
	BadPointer     Code = -2
	BadHandle      Code = -3
	TooLarge       Code = -4
	BufferTooSmall Code = -5
	LimitExceeded  Code = -6
	Invalid        Code = -7
	Internal       Code = -8
)

type codeInfo struct {
	name      string
	retryable bool
}

var codes = [...]codeInfo{
	-OK:             {"OK", false},
	-NotFound:       {"NOT_FOUND", false},
	-BadPointer:     {"BAD_POINTER", false},
	-BadHandle:      {"BAD_HANDLE", false},
	-TooLarge:       {"TOO_LARGE", false},
	-BufferTooSmall: {"BUFFER_TOO_SMALL", false},
	-LimitExceeded:  {"LIMIT_EXCEEDED", false},
	-Invalid:        {"INVALID", false},
	-Internal:       {"INTERNAL", true},
}

func (c Code) info() (codeInfo, bool) {
	if c > 0 || -c >= Code(len(codes)) {
		return codeInfo{}, false
	}
	return codes[-c], true
}

// String returns the code's name from SPEC.md, such as "NOT_FOUND".
func (c Code) String() string {
	if i, ok := c.info(); ok {
		return i.name
	}
	return "CODE(" + strconv.Itoa(int(c)) + ")"
}

// Retryable reports whether a batch that failed with c may succeed when run
// again unchanged.
func (c Code) Retryable() bool {
	i, _ := c.info()
	return i.retryable
}

// Err returns nil for OK and for positive values (a length or a handle), and
// the matching *Error otherwise.
func (c Code) Err() error {
	if c >= 0 {
		return nil
	}
	if c >= -Code(len(errs)) {
		return errs[-c-1]
	}
	return &Error{Code: c}
}

// Error is a negative Code as a Go error. Compare with errors.Is against the
// Err* values.
type Error struct {
	Code Code
}

func (e *Error) Error() string { return "abi: " + e.Code.String() }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errors for the codes, in code order.
var (
	ErrNotFound       = &Error{NotFound}
	ErrBadPointer     = &Error{BadPointer}
	ErrBadHandle      = &Error{BadHandle}
	ErrTooLarge       = &Error{TooLarge}
	ErrBufferTooSmall = &Error{BufferTooSmall}
	ErrLimitExceeded  = &Error{LimitExceeded}
	ErrInvalid        = &Error{Invalid}
	ErrInternal       = &Error{Internal}
)

var errs = [...]*Error{ErrNotFound, ErrBadPointer, ErrBadHandle, ErrTooLarge, ErrBufferTooSmall, ErrLimitExceeded, ErrInvalid, ErrInternal}
