package host

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/flowstate/flowstate/abi"
	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/internal/plugintest"
)

// instrumentCases are modules instrument must rewrite: the WAT guests the
// host tests share with the conformance suite, its Go SDK guest and the
// getput plugin.
func instrumentCases(t *testing.T) map[string][]byte {
	t.Helper()
	mods := map[string][]byte{}
	wats, _ := filepath.Glob("../conformance/testdata/*.wat")
	for _, w := range wats {
		name := strings.TrimSuffix(filepath.Base(w), ".wat")
		mods[name] = wasmOf(t, name)
	}
	mods[conformance.GoGuestModule] = wasmOf(t, conformance.GoGuestModule)
	var err error
	if mods["getput"], err = os.ReadFile(plugintest.Build(t, "host/testdata/getput")); err != nil {
		t.Fatal(err)
	}
	return mods
}

// TestInstrumentKeepsModulesValid rewrites every test module: a module
// wazero compiles must still compile, export the interrupt global, have a
// check after every loop, and keep its start function as an export.
func TestInstrumentKeepsModulesValid(t *testing.T) {
	ctx := t.Context()
	r := wazero.NewRuntime(ctx)
	defer r.Close(context.Background())
	for name, wasm := range instrumentCases(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := r.CompileModule(ctx, wasm); err != nil {
				t.Skipf("not a valid module to begin with: %v", err)
			}
			ins, err := instrument(wasm)
			if err != nil && strings.HasSuffix(err.Error(), "no memory") {
				t.Skip("no memory: such a module keeps wazero's context check")
			}
			if err != nil {
				t.Fatalf("instrument: %v", err)
			}
			cm, err := r.CompileModule(ctx, ins.wasm)
			if err != nil {
				t.Fatalf("the instrumented module does not compile: %v", err)
			}
			defer cm.Close(ctx)
			if _, ok := cm.ExportedFunctions()[startExport]; ok != ins.hasStart {
				t.Errorf("export %s present %v, hasStart %v", startExport, ok, ins.hasStart)
			}
			// The part of the check that names no global: the count test,
			// the trip to Go.
			tail := []byte{0x41, 0xff, 0x1f, 0x71, 0x45, 0x04, 0x40, 0x41, 0x00, 0x40, 0x00, 0x1a}
			if !bytes.Contains(loopCheck(7), tail) {
				t.Fatalf("loopCheck changed: update this test's pattern")
			}
			loops, after, checks := countLoops(t, wasm), countLoops(t, ins.wasm), bytes.Count(ins.wasm, tail)
			if after != loops || checks < loops {
				t.Errorf("%d loops before, %d after, %d checks; want a check per loop", loops, after, checks)
			}
			again, err := instrument(ins.wasm)
			if err == nil || !errors.Is(err, errCannotInstrument) || again.wasm != nil {
				t.Errorf("instrumenting twice = %v, want a refusal: the export names are taken", err)
			}
		})
	}
}

// countLoops counts the loop instructions of a module's code section.
func countLoops(t *testing.T, wasm []byte) int {
	t.Helper()
	r := reader{b: wasm[len(wasmHeader):]}
	n := 0
	for len(r.b) > 0 {
		id := r.byte()
		body := r.bytes(r.u32())
		if id != sectionCode {
			continue
		}
		cr := reader{b: body}
		for range cr.u32() {
			fr := reader{b: cr.bytes(cr.u32())}
			for range fr.u32() {
				fr.u32()
				fr.byte()
			}
			for len(fr.b) > 0 {
				op := fr.byte()
				if err := skipImmediates(&fr, op); err != nil {
					t.Fatal(err)
				}
				if op == 0x03 {
					n++
				}
			}
		}
	}
	return n
}

// TestInterruptDuringGC stops a guest that loops without host calls while
// the process collects garbage: the loop must leave the compiled code often
// enough for the stop-the-world, and then see its interrupt.
func TestInterruptDuringGC(t *testing.T) {
	rt := newRuntime(t, RuntimeConfig{})
	lim := Limits{CallTimeout: 300 * time.Millisecond}
	m := compile(t, rt, "probe", lim)
	if !m.interruptible {
		t.Fatal("probe is not instrumented")
	}
	i := instantiate(t, m, InstanceConfig{DB: openDB(t, "s1"), Stores: []string{"s1"}, Topics: []string{"out"}})
	stop := make(chan struct{})
	gcs := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				gcs <- n
				return
			default:
				runtime.GC()
				n++
			}
		}
	}()
	start := time.Now()
	_, err := i.Process(t.Context(), []abi.Record{probeRecord(op(opLoop))}, nil)
	took := time.Since(start)
	close(stop)
	n := <-gcs
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Process = %v, want ErrTimeout", err)
	}
	if took > 10*lim.CallTimeout || n < 2 {
		t.Errorf("stopped after %s with %d collections meanwhile; want about %s, with collections running", took, n, lim.CallTimeout)
	}
	// The instance recovers: a fresh guest serves the next batch.
	if _, err := i.Process(t.Context(), []abi.Record{probeRecord(op(opReturn, 0))}, nil); err != nil {
		t.Fatalf("the batch after the timeout: %v", err)
	}
}

// FuzzInstrument rewrites arbitrary bytes: instrument must not panic, and a
// module wazero compiles must compile after the rewrite.
func FuzzInstrument(f *testing.F) {
	for _, name := range []string{"counter", "probe", "init_trap"} {
		f.Add(wasmOf(f, name))
	}
	f.Add(append([]byte{}, wasmHeader...))
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	f.Fuzz(func(t *testing.T, b []byte) {
		ins, err := instrument(b)
		if err != nil {
			return
		}
		cm, err := r.CompileModule(ctx, b)
		if err != nil {
			return // not a module; instrument may still have walked it
		}
		cm.Close(ctx)
		cm, err = r.CompileModule(ctx, ins.wasm)
		if err != nil {
			t.Fatalf("a valid module does not compile after instrument: %v", err)
		}
		cm.Close(ctx)
	})
}
