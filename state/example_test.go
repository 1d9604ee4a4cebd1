package state_test

import (
	"fmt"
	"log"
	"os"

	"github.com/flowstate/flowstate/state"
)

func Example() {
	dir, err := os.MkdirTemp("", "state-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	budget, err := state.NewBudget(state.BudgetConfig{BlockCacheMB: 16, WriteBufferMB: 8})
	if err != nil {
		log.Fatal(err)
	}
	defer budget.Close()

	db, err := state.Open(state.Config{Dir: dir, Stores: []string{"counts"}, Budget: budget})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	counts, _ := db.StoreID("counts")

	// One guest batch that succeeds, one that fails and is undone.
	db.Put(counts, []byte("alice"), []byte("1"))
	sp := db.Savepoint()
	db.Put(counts, []byte("alice"), []byte("2"))
	db.Delete(counts, []byte("bob"))
	db.RollbackTo(sp)

	for _, c := range db.Pending() {
		fmt.Printf("changelog: %s=%s\n", c.Key, c.Value)
	}
	if err := db.Commit(state.Offsets{
		Changelog: map[string]int64{"counts": 1},
		Input:     map[string]int64{"clicks": 42},
	}); err != nil {
		log.Fatal(err)
	}

	v, ok, _ := db.Get(counts, []byte("alice"))
	off, _ := db.Offsets()
	fmt.Println(string(v), ok, off.Input["clicks"], off.Changelog["counts"])
	// Output:
	// changelog: alice=1
	// 1 true 42 1
}
