package observe

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowstate/flowstate/engine"
)

// engineCollector reports the attached engine's Metrics snapshot, taken
// once per scrape. Labels are pipelines, stores, roles, states and
// outcomes, all bounded by the config: never partitions, keys or offsets.
type engineCollector struct{ x *Exporter }

// family is one metric family of the snapshot.
type family struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
}

func newFamily(name, help string, kind prometheus.ValueType, labels ...string) family {
	return family{prometheus.NewDesc(name, help, labels, nil), kind}
}

// pipelineFamilies are the families with one sample per pipeline.
var pipelineFamilies = []struct {
	family
	value func(engine.PipelineMetrics) float64
}{
	{newFamily("flowstate_restore_tasks", "Tasks restoring their stores now.", prometheus.GaugeValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Tasks) }},
	{newFamily("flowstate_restore_waiting_tasks", "Restoring tasks waiting for a restore turn (restore.max_parallel).", prometheus.GaugeValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Waiting) }},
	{newFamily("flowstate_restore_remaining_records", "Changelog offsets the restoring tasks have left to replay.", prometheus.GaugeValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Remaining) }},
	{newFamily("flowstate_restore_rate_records_per_second", "Records per second the restoring tasks replay.", prometheus.GaugeValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return p.Restore.Rate }},
	{newFamily("flowstate_restore_records_total", "Changelog records replayed into stores.", prometheus.CounterValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Records) }},
	{newFamily("flowstate_restore_bytes_total", "Bytes of keys and values replayed into stores.", prometheus.CounterValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Bytes) }},
	{newFamily("flowstate_restores_total", "Finished restores, also those with nothing to replay.", prometheus.CounterValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.Restore.Restores) }},
	{newFamily("flowstate_restore_duration_seconds_total", "Wall time of the finished restores.", prometheus.CounterValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return p.Restore.Duration.Seconds() }},
	{newFamily("flowstate_process_records_total", "Input records processed.", prometheus.CounterValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.Records) }},
	{newFamily("flowstate_process_emitted_records_total", "Records the module emitted to its output topics.", prometheus.CounterValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.Emitted) }},
	{newFamily("flowstate_process_skipped_records_total", "Input records on_error: skip skipped.", prometheus.CounterValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.Skipped) }},
	{newFamily("flowstate_process_dead_letter_records_total", "Input records on_error: dead_letter wrote to the dead-letter topic.", prometheus.CounterValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.DeadLettered) }},
	{newFamily("flowstate_consumer_lag_records", "Input offsets the pipeline's active tasks have yet to process, as of each partition's last fetch.", prometheus.GaugeValue, "pipeline"),
		func(p engine.PipelineMetrics) float64 { return float64(p.InputLag) }},
}

var (
	failedBatches = newFamily("flowstate_process_failed_batches_total", "Guest calls over a batch that failed, by what followed (the pipeline's on_error: fail stops the task).", prometheus.CounterValue, "pipeline", "outcome")
	tasksFamily   = newFamily("flowstate_tasks", "Tasks of the process by role and state.", prometheus.GaugeValue, "pipeline", "role", "state")
	taskLag       = newFamily("flowstate_task_lag_records", "Changelog offsets the tasks' stores are behind their changelogs.", prometheus.GaugeValue, "pipeline", "role")
	commits       = newFamily("flowstate_commits_total", "Commits by result: a task's under at_least_once, the process's transaction under exactly_once.", prometheus.CounterValue, "result")

	budgetBytes   = newFamily("flowstate_rocksdb_budget_bytes", "The RocksDB memory budget of the process (rocksdb.block_cache_mb), memtables included.", prometheus.GaugeValue)
	cacheUsage    = newFamily("flowstate_rocksdb_block_cache_usage_bytes", "Bytes the shared block cache holds, the memtables' charge included (KIP-471 block-cache-usage).", prometheus.GaugeValue)
	cachePinned   = newFamily("flowstate_rocksdb_block_cache_pinned_usage_bytes", "Bytes of the shared block cache pinned by readers (KIP-471 block-cache-pinned-usage).", prometheus.GaugeValue)
	databases     = newFamily("flowstate_rocksdb_databases", "Open RocksDB databases: one per task and standby.", prometheus.GaugeValue)
	memtables     = newFamily("flowstate_rocksdb_memtable_bytes", "Memtable bytes of a store over its databases (rocksdb.cur-size-all-mem-tables).", prometheus.GaugeValue, "store")
	tableReaders  = newFamily("flowstate_rocksdb_table_readers_bytes", "Table reader memory of a store outside the block cache (rocksdb.estimate-table-readers-mem).", prometheus.GaugeValue, "store")
	pendingCompac = newFamily("flowstate_rocksdb_pending_compaction_bytes", "Bytes compaction has yet to rewrite in a store (rocksdb.estimate-pending-compaction-bytes).", prometheus.GaugeValue, "store")
)

func (c engineCollector) families() []family {
	fs := []family{failedBatches, tasksFamily, taskLag, commits, budgetBytes, cacheUsage, cachePinned, databases, memtables, tableReaders, pendingCompac}
	for _, f := range pipelineFamilies {
		fs = append(fs, f.family)
	}
	return fs
}

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.families() {
		ch <- f.desc
	}
}

// taskStates are the states flowstate_tasks reports, each always present so
// that a dashboard sees zeros rather than gaps.
var taskStates = []engine.TaskState{engine.Created, engine.Restoring, engine.Running, engine.Closed, engine.Failed}

// taskRoles are the roles flowstate_tasks reports.
var taskRoles = []string{engine.RoleActive, engine.RoleStandby, engine.RoleWarmup}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.x.source.Load()
	if f == nil {
		return
	}
	m := (*f)()
	emit := func(f family, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(f.desc, f.kind, v, labels...)
	}
	for _, p := range m.Pipelines {
		for _, f := range pipelineFamilies {
			emit(f.family, f.value(p), p.Pipeline)
		}
		outcomes := make([]string, 0, len(p.FailedBatches))
		for o := range p.FailedBatches {
			outcomes = append(outcomes, string(o))
		}
		slices.Sort(outcomes)
		for _, o := range outcomes {
			emit(failedBatches, float64(p.FailedBatches[engine.OnError(o)]), p.Pipeline, o)
		}
	}
	type key struct {
		pipeline, role string
		state          engine.TaskState
	}
	counts := map[key]int{}
	lags := map[key]int64{}
	for _, t := range m.Tasks {
		counts[key{t.Pipeline, t.Role, t.State}]++
		lags[key{t.Pipeline, t.Role, 0}] += t.Lag
	}
	for _, p := range m.Pipelines {
		for _, role := range taskRoles {
			for _, s := range taskStates {
				emit(tasksFamily, float64(counts[key{p.Pipeline, role, s}]), p.Pipeline, role, strings.ToLower(s.String()))
			}
			emit(taskLag, float64(lags[key{p.Pipeline, role, 0}]), p.Pipeline, role)
		}
	}
	emit(commits, float64(m.Commits), "ok")
	emit(commits, float64(m.FailedCommits), "failed")

	r := m.RocksDB
	emit(budgetBytes, float64(r.BudgetBytes))
	emit(cacheUsage, float64(r.BlockCacheUsage))
	emit(cachePinned, float64(r.BlockCachePinned))
	emit(databases, float64(r.Databases))
	for store, s := range r.Stores {
		emit(memtables, float64(s.MemtableBytes), store)
		emit(tableReaders, float64(s.TableReadersBytes), store)
		emit(pendingCompac, float64(s.PendingCompactionBytes), store)
	}
}
