package api

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
)

// WebSocket connection buffer sizes, chosen with BenchmarkIdleConnMemory
// and BenchmarkFanout. net/http hands a hijacker its 4 KiB read and write
// buffers, which coder/websocket keeps for the connection's life: 8 KiB of
// an idle stream's cost. A stream client sends only control frames (and
// the read limit is small), so a small read buffer serves it; one write
// buffer's worth of message goes out in one write, a larger message in two
// (coder/websocket writes what does not fit straight from the message);
// in fan-out runs a 1 KiB and a 4 KiB writer did equally well (see
// docs/BENCHMARKS.md), and each KiB here is a KiB per idle stream.
const (
	wsReadBufSize  = 512
	wsWriteBufSize = 1 << 10
)

// smallBufs returns w wrapped so that a WebSocket accepted on it
// (websocket.Accept takes the first http.Hijacker it finds) gets buffers of
// the given sizes instead of net/http's. Without a Hijacker behind w (as
// coder/websocket looks for one: w itself or through Unwrap) it returns w,
// so that Accept answers 501 as before.
func smallBufs(w http.ResponseWriter, readSize, writeSize int) http.ResponseWriter {
	for rw := w; ; {
		switch t := rw.(type) {
		case http.Hijacker:
			return smallBufHijacker{ResponseWriter: w, hj: t, readSize: readSize, writeSize: writeSize}
		case interface{ Unwrap() http.ResponseWriter }:
			rw = t.Unwrap()
		default:
			return w
		}
	}
}

// smallBufHijacker is smallBufs' wrapper; hj is the Hijacker found behind
// the ResponseWriter.
type smallBufHijacker struct {
	http.ResponseWriter
	hj                  http.Hijacker
	readSize, writeSize int
}

// Unwrap lets http.ResponseController reach the wrapped ResponseWriter.
func (w smallBufHijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hijacks the connection and returns it with fresh, small buffers.
// Bytes the client sent after the request that net/http had already read
// (a pipelined first frame) are carried over into the new read buffer,
// which grows to hold them when they do not fit; anything left in net/http's
// write buffer is flushed first.
func (w smallBufHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := w.hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Writer.Buffered() > 0 {
		if err := brw.Flush(); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("flush before hijack: %w", err)
		}
	}
	n := brw.Reader.Buffered()
	if n == 0 {
		return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, w.readSize), bufio.NewWriterSize(conn, w.writeSize)), nil
	}
	pending, _ := brw.Peek(n) // n bytes are buffered: no error
	// Move them into the new buffer: one fill takes them all and reads
	// nothing from conn; later reads go to conn.
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pending), conn), max(w.readSize, n))
	if _, err := r.Peek(n); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("carry over buffered bytes: %w", err)
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, w.writeSize)), nil
}
