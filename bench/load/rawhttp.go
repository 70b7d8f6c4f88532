package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// rawConn is a minimal HTTP/1.1 keep-alive client for one connection,
// as wrk is: the request bytes are built once and written as they are, and
// the answer's status line and framing (Content-Length or chunked) are all
// that is parsed. The ingest mode uses it so that the client costs the
// machine as little as possible (net/http's client costs several times
// more CPU per request; see docs/BENCHMARKS.md). Not safe for concurrent
// use.
type rawConn struct {
	addr string
	req  []byte
	conn net.Conn
	br   *bufio.Reader
}

// newRawConn prepares POSTs of body, as JSON, to rawURL.
func newRawConn(rawURL string, body []byte) (*rawConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%s: only http:// is supported", rawURL)
	}
	var req []byte
	req = fmt.Appendf(req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		u.RequestURI(), u.Host, len(body))
	req = append(req, body...)
	return &rawConn{addr: u.Host, req: req}, nil
}

// do sends the request once and returns the answer's status, dialling
// first if needed. Any error closes the connection (the next call dials
// again). The request must end by deadline.
func (c *rawConn) do(ctx context.Context, deadline time.Time) (int, error) {
	if c.conn == nil {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.br.Reset(conn)
		}
	}
	_ = c.conn.SetDeadline(deadline)
	code, keep, err := c.roundTrip()
	if err != nil || !keep {
		c.close()
	}
	return code, err
}

// close closes the connection, if open.
func (c *rawConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

var (
	errBadResponse = errors.New("malformed HTTP response")
	hdrLength      = []byte("content-length:")
	hdrChunked     = []byte("transfer-encoding: chunked")
	hdrClose       = []byte("connection: close")
)

func (c *rawConn) roundTrip() (code int, keep bool, err error) {
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, false, errBadResponse
	}
	code, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errBadResponse
	}
	length, chunked, keep := -1, false, true
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return code, false, err
		}
		if len(line) <= 2 { // the blank line ending the headers
			break
		}
		lower := bytes.ToLower(bytes.TrimRight(line, "\r\n"))
		switch {
		case bytes.HasPrefix(lower, hdrLength):
			length, err = strconv.Atoi(string(bytes.TrimSpace(lower[len(hdrLength):])))
			if err != nil {
				return code, false, errBadResponse
			}
		case bytes.Equal(lower, hdrChunked):
			chunked = true
		case bytes.Equal(lower, hdrClose):
			keep = false
		}
	}
	switch {
	case chunked:
		err = c.discardChunked()
	case length >= 0:
		_, err = c.br.Discard(length)
	default: // no framing: the body runs to the end of the connection
		_, err = io.Copy(io.Discard, c.br)
		keep = false
	}
	return code, keep && err == nil, err
}

// discardChunked reads a chunked body to its end.
func (c *rawConn) discardChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		sz, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(sz), 16, 64)
		if err != nil {
			return errBadResponse
		}
		if n == 0 { // trailers, then a blank line
			for {
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
