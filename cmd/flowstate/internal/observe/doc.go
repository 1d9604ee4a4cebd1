// Package observe is the one exporter of the flowstate binary: it serves a
// process's /metrics, mapped from engine.Metrics to the Prometheus text
// format, and /status, the same snapshot as JSON for `flowstate status`.
// Packages expose snapshots; only this one names metrics.
package observe
