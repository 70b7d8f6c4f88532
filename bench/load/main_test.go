package main

import (
	"context"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the hidden baseline subcommands when the tool spawns this
// test binary as a sibling (os.Executable is the test binary here), and the
// tests otherwise.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "serve-bare" || os.Args[1] == "serve-bare-hub") {
		if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
