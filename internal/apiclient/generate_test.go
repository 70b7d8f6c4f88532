package apiclient_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedClientIsFresh regenerates the client from openapi.yaml with
// the oapi-codegen that go.mod pins (go tool, as the go:generate line
// does) and fails when client.gen.go differs: the spec and the committed
// client cannot drift apart. The first run builds the tool, which takes a
// while; go's build cache keeps it after that.
func TestGeneratedClientIsFresh(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to run the pinned oapi-codegen: %v", err)
	}
	cfg, err := os.ReadFile("cfg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The same configuration, writing into a temporary directory.
	out := filepath.Join(t.TempDir(), "client.gen.go")
	const line = "output: client.gen.go\n"
	if !bytes.Contains(cfg, []byte(line)) {
		t.Fatalf("cfg.yaml has no %q line", strings.TrimSpace(line))
	}
	tmpCfg := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(tmpCfg, bytes.Replace(cfg, []byte(line), []byte("output: "+out+"\n"), 1), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(t.Context(), goBin, "tool", "oapi-codegen", "-config", tmpCfg, "../../openapi.yaml")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool oapi-codegen: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Fatalf("client.gen.go is stale: openapi.yaml or cfg.yaml changed since it was generated; run `go generate ./internal/apiclient/` and commit the result\n%s",
			firstDiff(committed, fresh))
	}
}

// firstDiff shows the first line where the committed and the fresh file
// differ.
func firstDiff(committed, fresh []byte) string {
	a, b := strings.Split(string(committed), "\n"), strings.Split(string(fresh), "\n")
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  committed: %s\n  generated: %s", i+1, x, y)
		}
	}
	return ""
}
