// Package crashpoint kills the process with SIGKILL at named points of the
// commit path and the restore, so that the crash suite lands inside windows
// that random kills almost never hit.
package crashpoint
