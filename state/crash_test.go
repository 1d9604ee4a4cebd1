package state

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// crashEnv makes the test binary, run by TestCrash, write to the DB in the
// directory it names and then kill itself.
const crashEnv = "FLOWSTATE_STATE_CRASH"

// TestCrash kills a process that commits or restores, without Close, and
// checks that the reopened store holds exactly the data its offsets claim.
func TestCrash(t *testing.T) {
	if mode := os.Getenv(crashEnv); mode != "" {
		crashChild(mode, os.Getenv(crashEnv+"_DIR"))
		return
	}
	tests := []struct {
		name    string
		mode    string
		offset  func(Offsets) int64
		atLeast int64
	}{
		// Commit goes through the WAL, which survives a process crash.
		{name: "commit", mode: "commit", offset: func(o Offsets) int64 { return o.Input["in"] }, atLeast: 50},
		// Restore skips the WAL: what was flushed survives, the rest is lost
		// together with its offset.
		{name: "restore", mode: "restore", offset: func(o Offsets) int64 { return o.Changelog["s"] }, atLeast: 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrash$")
			cmd.Env = append(os.Environ(), crashEnv+"="+tt.mode, crashEnv+"_DIR="+dir)
			out, err := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("child did not die by signal: %v\n%s", err, out)
			}

			db := openTest(t, dir, "s")
			off, err := db.Offsets()
			if err != nil {
				t.Fatal(err)
			}
			n := tt.offset(off)
			t.Logf("offset after crash: %d", n)
			if n < tt.atLeast {
				t.Errorf("offset %d after crash, want at least %d", n, tt.atLeast)
			}
			for i := int64(1); i <= 50; i++ {
				got := get(t, db, 0, fmt.Sprint("key-", i))
				if want := i <= n; want != (got != "<none>") {
					t.Errorf("offset %d but key-%d present = %v", n, i, !want)
				}
			}
		})
	}
}

func crashChild(mode, dir string) {
	db, err := Open(Config{Dir: dir, Stores: []string{"s"}})
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	for i := int64(1); i <= 50; i++ {
		key := []byte(fmt.Sprint("key-", i))
		switch mode {
		case "commit":
			err = db.Put(0, key, []byte("v"))
			if err == nil {
				err = db.Commit(Offsets{Input: map[string]int64{"in": i}})
			}
		case "restore":
			err = db.ApplyChangelog(0, []Change{{Key: key, Value: []byte("v")}}, i)
			if err == nil && i == 25 {
				err = db.Flush()
			}
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
