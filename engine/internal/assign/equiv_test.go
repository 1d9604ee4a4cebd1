package assign

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func randomInput(r *rand.Rand) Input {
	all := []Pipeline{
		{Name: "count", Inputs: []string{"a"}, Stores: []string{"s"}, Changelogs: []string{"c-s"}},
		{Name: "join", Inputs: []string{"l", "r"}, Stores: []string{"x", "y"}, Changelogs: []string{"c-x", "c-y"}},
		{Name: "map", Inputs: []string{"a"}},
		{Name: "solo", Inputs: []string{"b"}, Stores: []string{"z"}, Changelogs: []string{"c-z"}},
		{Name: "free", Inputs: []string{"f"}},
	}
	var in Input
	for _, p := range all {
		if r.IntN(3) > 0 {
			in.Pipelines = append(in.Pipelines, p)
		}
	}
	in.Partitions = map[string]int32{}
	topics := []string{}
	for _, p := range in.Pipelines {
		for _, t := range p.Inputs {
			if _, ok := in.Partitions[t]; !ok {
				in.Partitions[t] = int32(1 + r.IntN(8))
				topics = append(topics, t)
			}
		}
	}
	if r.IntN(4) == 0 {
		in.Partitions["orphan"] = int32(1 + r.IntN(3))
		topics = append(topics, "orphan")
	}
	in.Ends = map[TopicPartition]int64{}
	noEnds := r.IntN(4) == 0
	for _, p := range in.Pipelines {
		for _, cl := range p.Changelogs {
			for q := range int32(8) {
				if !noEnds && r.IntN(5) > 0 {
					in.Ends[TopicPartition{cl, q}] = int64(r.IntN(120))
				}
			}
		}
	}
	nm := 1 + r.IntN(7)
	racks := []string{"", "r1", "r2", "r3"}
	for i := range nm {
		m := Member{ID: fmt.Sprintf("m%d", r.IntN(100)*10+i), Owned: map[string][]int32{}, Stores: map[Task]map[string]int64{}, Generation: int32(r.IntN(3))}
		if r.IntN(4) == 0 {
			m.Instance = fmt.Sprintf("i%d", r.IntN(5)*10+i)
		}
		m.Rack = racks[r.IntN(len(racks))]
		for _, t := range topics {
			if r.IntN(6) > 0 {
				m.Topics = append(m.Topics, t)
			}
		}
		for t, n := range in.Partitions {
			for q := range n {
				if r.IntN(nm+1) == 0 {
					m.Owned[t] = append(m.Owned[t], q)
				}
			}
		}
		for _, p := range in.Pipelines {
			for q := range int32(8) {
				if len(p.Stores) > 0 && r.IntN(3) == 0 {
					offs := map[string]int64{}
					for _, s := range p.Stores {
						if r.IntN(5) > 0 {
							offs[s] = int64(r.IntN(130) - 5)
						}
					}
					m.Stores[Task{p.Name, q}] = offs
				}
			}
		}
		in.Members = append(in.Members, m)
	}
	in.Standbys = r.IntN(4)
	in.MaxWarmups = r.IntN(5) - 1
	in.AcceptableLag = int64(r.IntN(60))
	return in
}

func TestEquivalentToReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range equivalenceCases {
		in := randomInput(r)
		want := assignRef(in)
		got := Assign(in)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: input %+v\ngot  %+v\nwant %+v", n, in, got, want)
		}
	}
}

// equivalenceCases is how many random inputs TestEquivalentToReference tries.
const equivalenceCases = 5000
