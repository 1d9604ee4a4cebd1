// Package layout owns the files of a state directory: task directories,
// their close markers and offsets, the saved static subscription, the
// process id, and their cleanup.
package layout
