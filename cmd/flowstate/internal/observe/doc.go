// Package observe is the one exporter of the flowstate binary: on a
// process's http_addr it serves /metrics (Prometheus, from the engine's
// Metrics snapshot, its timing hooks, franz-go's kprom client metrics and
// the Go runtime and process collectors, in a registry of its own),
// /status (the same snapshot as JSON, for `flowstate status`) and / (a
// status page embedded in the binary). It also routes franz-go's logs to
// the process log. Packages expose snapshots and hooks; only this one
// names metrics.
package observe
