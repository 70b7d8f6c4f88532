package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// centrifugoChannel is the one channel the fan-out comparison uses.
const centrifugoChannel = "bench"

// centrifugoConfig is a v6 configuration for a loopback benchmark: memory
// engine (the default), anonymous clients may connect and subscribe, the
// HTTP API needs no key, /health is on, and usage statistics (which would
// call out) are off. Never expose such a server: it listens on loopback
// only.
const centrifugoConfig = `{
  "http_server": {"address": "127.0.0.1", "port": %s},
  "log": {"level": "error"},
  "client": {"insecure": true, "allowed_origins": ["*"]},
  "http_api": {"insecure": true},
  "engine": {"type": "memory"},
  "health": {"enabled": true},
  "usage_stats": {"disabled": true}
}`

// centrifugoCommand returns how to start Centrifugo on addr: the binary
// from $GOBIN, $GOPATH/bin or $PATH, and a config file written to dir.
func centrifugoCommand(dir, addr string) (string, []string, error) {
	bin, err := centrifugoBinary()
	if err != nil {
		return "", nil, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "centrifugo.json")
	if err := os.WriteFile(conf, fmt.Appendf(nil, centrifugoConfig, port), 0o600); err != nil {
		return "", nil, err
	}
	return bin, []string{"--config", conf}, nil
}

// centrifugoBinary finds an installed centrifugo (go install
// github.com/centrifugal/centrifugo/v6@v6.9.1).
func centrifugoBinary() (string, error) {
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "centrifugo")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("centrifugo"); err == nil {
		return p, nil
	}
	return "", errors.New("centrifugo is not installed (go install github.com/centrifugal/centrifugo/v6@v6.9.1)")
}

// dialCentrifugo connects with Centrifugo's JSON protocol, subscribes to
// the bench channel and returns a subscriber checking the publisher's
// counter (data.n, from 1) in place of a seq.
func dialCentrifugo(ctx context.Context, base string) (*subscriber, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/connection/websocket"
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(-1)
	cmds := `{"id":1,"connect":{"name":"load"}}` + "\n" + `{"id":2,"subscribe":{"channel":"` + centrifugoChannel + `"}}`
	if err := conn.Write(ctx, websocket.MessageText, []byte(cmds)); err != nil {
		conn.CloseNow()
		return nil, err
	}
	for subscribed := false; !subscribed; {
		_, b, err := conn.Read(ctx)
		if err != nil {
			conn.CloseNow()
			return nil, fmt.Errorf("centrifugo subscribe: %w", err)
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			if bytes.Contains(line, []byte(`"error"`)) {
				conn.CloseNow()
				return nil, fmt.Errorf("centrifugo: %s", line)
			}
			if bytes.HasPrefix(line, []byte(`{"id":2`)) {
				subscribed = true
			}
		}
	}
	return &subscriber{conn: conn, ck: newChecker(1), seqKey: keyN, centrifugo: true}, nil
}

// centrifugoPublisher publishes through Centrifugo's HTTP API, a batch of
// publish commands per call.
type centrifugoPublisher struct {
	client *http.Client
	url    string
}

func (p *centrifugoPublisher) publish(ctx context.Context, n int, from uint64) (uint64, error) {
	now := time.Now().UnixNano()
	body := make([]byte, 0, n*160+32)
	body = append(body, `{"parallel":false,"commands":[`...)
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"publish":{"channel":"`+centrifugoChannel+`","data":`...)
		body = benchData(body, now, from+uint64(i))
		body = append(body, "}}"...)
	}
	body = append(body, "]}"...)
	status, out, err := postJSON(ctx, p.client, p.url+"/api/batch", body)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK || bytes.Contains(out, []byte(`"error"`)) {
		return 0, fmt.Errorf("centrifugo publish: status %d: %.200s", status, out)
	}
	return from + uint64(n) - 1, nil
}
