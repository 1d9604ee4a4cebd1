package conformance_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/flowstate/flowstate/conformance"
	"github.com/flowstate/flowstate/conformance/flowstatehost"
)

// Run the host cases of one group against flowstate's host and print the
// table, as `flowstate conformance --run '^kv_delete'` does.
func ExampleRun() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "conformance-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	h, err := flowstatehost.New(ctx, dir)
	if err != nil {
		panic(err)
	}
	defer h.Close(ctx)

	var cases []conformance.Case
	for _, c := range conformance.HostSuite(nil) {
		if strings.HasPrefix(c.Name, "kv_delete:") {
			cases = append(cases, c)
		}
	}
	failed, err := conformance.WriteTable(os.Stdout, conformance.Run(ctx, h, cases))
	fmt.Println(failed, err)
	// Output:
	// CASE                                WANT                       GOT                        RESULT
	// kv_delete: present key              OK NOT_FOUND               OK NOT_FOUND               PASS
	// kv_delete: absent key               OK                         OK                         PASS
	// kv_delete: unknown store handle     BAD_HANDLE                 BAD_HANDLE                 PASS
	// kv_delete: key pointer past memory  BAD_POINTER                BAD_POINTER                PASS
	// kv_delete: key over max_key_bytes   TOO_LARGE; output_refused  TOO_LARGE; output_refused  PASS
	//
	// 5 cases: 5 passed, 0 failed
	// 0 <nil>
}
