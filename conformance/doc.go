// Package conformance checks a host or a guest SDK against the guest ABI
// (abi/SPEC.md) and the conformance processor (SPEC.md in this folder).
//
// Two suites share one runner:
//
//   - HostSuite: a table of cases, each a guest module with its expected
//     outcome: every host function's success and error codes, bad pointers
//     and lengths, unknown handles, iterator misuse, oversize records,
//     memory past the limit, endless loops, traps, and modules refused at
//     load. The edge-case guests are WAT (testdata/*.wat), the others the
//     Go SDK's conformance processor. The host under test sits behind the
//     Host interface; package flowstatehost adapts flowstate's host.
//   - SDKSuite: scripted inputs for a guest SDK's implementation of the
//     conformance processor, and the outputs and stores it must produce
//     (testdata/sdk). It runs the guest on a Host; flowstate's is the
//     reference.
//
// To check another host, implement Host and Instance over it and run
//
//	results := conformance.Run(ctx, myHost, conformance.HostSuite(nil))
//	failed, err := conformance.WriteTable(os.Stdout, results)
//
// The suites' modules and scripts are embedded, so `flowstate conformance`
// needs no toolchain. TestModules checks that the embedded modules match
// their sources and rebuilds them with -update. testdata/*.wat is also the
// corpus of package host's own tests, which load it with EmbeddedModule:
// one set of guests, one build.
package conformance
