package assign

import "strconv"

// Task is one pipeline on one partition of its inputs.
type Task struct {
	Pipeline  string
	Partition int32
}

func (t Task) String() string { return t.Pipeline + "/" + strconv.Itoa(int(t.Partition)) }

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Pipeline is what assignment needs to know of a pipeline.
type Pipeline struct {
	Name       string
	Inputs     []string
	Stores     []string
	Changelogs []string // changelog topic per store
}

// Member is one group member as the leader sees it.
type Member struct {
	ID       string
	Instance string // instance_id, "" for a dynamic member
	Rack     string // "" when unset
	Topics   []string
	// Generation is the group generation Owned was assigned in.
	Generation int32
	// Owned are the partitions the member consumes now, by topic.
	Owned map[string][]int32
	// Acquired is, per owned partition, the generation it was first
	// assigned to the member in (missing: before any it knows of). A
	// member above its share gives up the units it took last first, so
	// that a unit taken over from a member that left goes back to that
	// member when it returns.
	Acquired map[TopicPartition]int32
	// Stores maps a task the member holds a copy of to the next changelog
	// offset of each of its stores (missing: never committed).
	Stores map[Task]map[string]int64
}

// Input is everything Assign decides from.
type Input struct {
	Members []Member
	// Partitions are the topics to assign, with their partition counts.
	Partitions map[string]int32
	Pipelines  []Pipeline
	// Ends are the changelogs' end offsets; a partition missing here is
	// taken to end at the highest offset a member reported for it.
	Ends map[TopicPartition]int64
	// Standbys is how many standby copies of each unit with stores to
	// assign.
	Standbys int
	// MaxWarmups bounds the units kept on a caught-up member while a
	// warm-up copy fills on the member they should move to (0 or less:
	// none). AcceptableLag is the lag, in changelog records, up to which a
	// copy counts as caught up.
	MaxWarmups    int
	AcceptableLag int64
}

// Reason says why a unit went to its member.
type Reason string

const (
	Kept        Reason = "kept"         // its owner keeps it
	CaughtUp    Reason = "caught_up"    // the member with room whose copy lags least
	LeastLoaded Reason = "least_loaded" // no member with room has a useful copy
	Overloaded  Reason = "overloaded"   // no member that subscribes to it has room
	WarmingUp   Reason = "warming_up"   // a caught-up member keeps it while another member's copy catches up
)

// Decision is where one unit went.
type Decision struct {
	Names  []string         // its tasks, pipeline/partition (topic/partition for a topic no pipeline reads)
	Parts  []TopicPartition // its input partitions, sorted
	Member string
	Owner  string // the member owning it before, or ""
	Reason Reason
	Lag    int64 // the changelog records the member has to restore
	// Standbys are the members given a standby copy of its tasks.
	Standbys []string
}

// Standby is one standby task of a member.
type Standby struct {
	Task
	// Warmup marks a copy filling up on the member the task is to move to.
	Warmup bool
}

// Plan is the result of Assign.
type Plan struct {
	Members map[string]map[string][]int32 // member -> topic -> sorted partitions
	Units   []Decision                    // in unit order
	// Standbys are the tasks each member keeps a standby copy of, in unit
	// order (warm-ups included, marked); members without any are missing.
	Standbys map[string][]Standby
	// Warmups counts the units kept on a member while a warm-up copy
	// catches up on the member they should move to.
	Warmups int
}
