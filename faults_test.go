package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// postOne posts one event and fails the test unless it is accepted.
func postOne(t *testing.T, base string, i int) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(base+"/v1/events", "application/json", strings.NewReader(fmt.Sprintf(`{"type":"fault.test","data":%d}`, i)))
	if err != nil {
		t.Fatalf("ingest %d: %v", i, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ingest %d = %d", i, resp.StatusCode)
	}
}

func TestIdleConnectionsDoNotStopIngest(t *testing.T) {
	const n = 5000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 2*n+256 {
		t.Skipf("open-file limit %d is below the %d this test needs", lim.Cur, 2*n+256)
	}
	base, _, _ := startRun(t)
	addr := strings.TrimPrefix(base, "http://")
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	for i := range 20 {
		postOne(t, base, i)
	}
}

func TestSlowlorisIsCutOffAndDoesNotTieUpTheServer(t *testing.T) {
	base, _, _ := startRun(t, "--read-header-timeout", "300ms")
	addr := strings.TrimPrefix(base, "http://")
	const slow = 50
	conns := make([]net.Conn, 0, slow)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Dribble: "); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i := range 20 { // the server keeps serving others meanwhile
		postOne(t, base, i)
	}
	// Each dribbling client is cut off once the header deadline passes:
	// its next read sees the server close (a 408 or EOF), well before the
	// test's own bound.
	for i, c := range conns {
		if _, err := io.WriteString(c, "a"); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("slow client %d still connected after 10s", i)
		}
		if err == nil && !strings.Contains(line, "408") && !strings.Contains(line, "400") {
			t.Fatalf("slow client %d got %q, want a 408/400 or a close", i, line)
		}
	}
}
