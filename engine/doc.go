// Package engine runs pipelines: it joins the application's consumer group,
// makes a task for each assigned partition of each pipeline, restores the
// task's stores, feeds it batches, and drives its commits.
//
// The processes of an application share its input partitions through the
// group balancer of balancer.go, a kgo adapter over the pure assignment of
// internal/assign: the partitions of one task always go to one
// process, a task stays where it runs, and one that must move goes to the
// process whose copy of its stores is the most caught up, the tasks of the
// group balanced to within one per process. Copies are kept up to date on
// purpose: standby tasks (standby.go) tail a task's changelogs on other
// processes, through one client per process (restore.Tailer), so that a
// failed process's tasks move to their standbys and restore only what the
// standby had not tailed yet. A task whose balanced place holds no
// caught-up copy runs where one is, beyond that process's share, while a
// warm-up (a standby marked as such) fills the copy; probing rebalances
// move it once the copy is caught up (warmup.go). A static member
// (instance_id) that stops cleanly and restarts keeps its place without a
// rebalance (static.go). Restores and standby catch-ups take turns, active
// tasks first (turns.go).
//
// A task owns one Wasm instance and one RocksDB database and runs on its own
// goroutine; tasks share nothing mutable. Active tasks (task.go) and
// standbys (standby.go) are separate types around what they share, a
// store (replica.go), and get what they need from the engine as a taskEnv,
// never the engine itself. A commit takes the same steps under both
// guarantees (commit.go); exactly-once adds one transaction around them
// for all tasks (txn.go). A crash at any point loses nothing: the store is
// consistent as of its last batch, a restart replays only the changelog
// records after that batch, and input resumes from the later of the
// group's offset and the store's. The poll loop never waits for a task: a
// task that falls behind has its partitions paused (inbox.go).
//
// Locks, in the order they are taken; none is held while waiting for a
// task's goroutine, except mu while a rebalance stops the tasks it revokes:
//
//  1. Engine.mu: the tasks and the partition map; held by the poll loop
//     while it hands records over and commits, by the rebalance callbacks,
//     and by standby reconciliation.
//  2. task.gmu: orders the pause of a task not yet running with its start.
//  3. standbySet.mu and pauser.mu, each after the above and never both.
//  4. tracker.mu, replica.durMu, restoreStatus.mu, inbox.mu, turnPool.mu,
//     history.mu:
//     leaves, held briefly, never while taking another lock (the janitor
//     holds tracker.mu while it renames a directory, so that no task opens
//     it meanwhile). inputLag.mu (hooks.go) is one too, taken by
//     the poll loop under Engine.mu; Metrics reads the stores' memory
//     (state.Budget.MemoryStats, under the budget's own leaf lock) after
//     it has let go of tracker.mu.
//
// Opening and closing stores happens on the tasks' and standbys' own
// goroutines, never under Engine.mu: the next owner of a directory waits
// for the previous one's goroutine to end.
//
// A batch the module fails (a guest error, a trap, a timeout, a refused
// write or emit) leaves nothing behind: the host rolls it back. Then the
// pipeline's OnError decides: fail stops the task; skip and dead_letter run
// the batch again in halves to find the records that fail on their own,
// process every other record in order, and skip each failing one or write it
// to the pipeline's dead-letter topic (onerror.go). A host-side failure
// (INTERNAL) always stops the task: no record is dropped for it.
//
// A task that stops on a failure goes FAILED and stays in the engine, its
// partitions paused and its offsets as its last commit left them, while
// the other tasks go on; the poll loop restarts it on the same store after
// the pipeline's backoff, and under exactly-once only after the open
// transaction has aborted, since the transaction must never commit what
// the task produced without its store writes (failure.go). The limits of
// the sandbox are checked at start against what the topics take, so that
// a write the sandbox accepts never fails a commit (limits.go).
package engine
