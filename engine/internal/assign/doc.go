// Package assign decides which group member runs each task, and which keep
// standby and warm-up copies of its stores, from what the members report,
// and encodes those reports and decisions for the group protocol.
//
// It is pure: no Kafka client, no file system, no clock, no logging. The
// engine's kgo adapter (engine/balancer.go) gathers the input (the members'
// subscriptions, the changelogs' end offsets) and acts on the Plan.
//
// The rules (Assign):
//
//   - the input partitions of one task go together: partition p of every
//     input of a pipeline, and of every pipeline sharing one of those inputs,
//     since a partition feeds all the pipelines reading it ("units");
//   - a unit stays with the member that owns it now (sticky), else goes to
//     the member with the smallest lag (its copy is the most caught up), else
//     to the least loaded one; never so that a member holds more than one
//     unit above another;
//   - a member above its share gives up first the units another member
//     could take within the acceptable lag, the ones it acquired last first
//     (Member.Acquired), so that what it took over from a member that left
//     goes back when that member returns, as a new member or not: a rolling
//     restart moves every task back once and nothing else;
//   - a unit that would move to a member whose copy lags more than
//     Input.AcceptableLag, while another member's copy is within it, stays
//     on that member while the first warms a copy up (KIP-441), at most
//     Input.MaxWarmups at a time;
//   - every stateful unit gets Input.Standbys standby copies on other
//     members, on other racks first, spread by load, sticky by lag, and
//     the units active on one member keep them on different members, so
//     that when it leaves each of its units fails over to a caught-up copy
//     with room.
//
// The result is deterministic: members and units are sorted, and ties are
// broken by that order.
package assign
