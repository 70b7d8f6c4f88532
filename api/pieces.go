package api

import (
	"io"
	"sync"
)

// pieceBufSize is the most a message's small pieces are gathered in before
// they are written (msgPieces).
const pieceBufSize = 4 << 10

// pieceBufs holds msgPieces buffers shared by all clients: a client holds
// one only while writing, so an idle connection costs none.
var pieceBufs = sync.Pool{New: func() any { b := make([]byte, 0, pieceBufSize); return &b }}

// msgPieces writes one stream message without copying events' JSON per
// client: small pieces (meta lines, separators, small events) are gathered
// in a pooled buffer of pieceBufSize; a piece that does not fit is written
// to the transport as it is (the bytes the log stores, which every client
// shares). So what a client blocked in a write holds is that buffer,
// whatever the size of the events it sends. A message that fits in the
// buffer is never written piecewise: finish hands it over whole (one
// WebSocket frame).
//
// Errors are sticky: after one, writes do nothing and finish returns it.
type msgPieces struct {
	bp  *[]byte
	buf []byte
	// open returns where pieces go once the message outgrows buf; called
	// at most once.
	open func() (io.Writer, error)
	w    io.Writer
	err  error
}

func newMsgPieces(open func() (io.Writer, error)) *msgPieces {
	bp := pieceBufs.Get().(*[]byte)
	return &msgPieces{bp: bp, buf: (*bp)[:0], open: open}
}

// write adds p to the message.
func (m *msgPieces) write(p []byte) {
	if m.err != nil {
		return
	}
	if len(m.buf)+len(p) <= cap(m.buf) {
		m.buf = append(m.buf, p...)
		return
	}
	if m.w == nil {
		if m.w, m.err = m.open(); m.err != nil {
			return
		}
	}
	if len(m.buf) > 0 {
		if _, m.err = m.w.Write(m.buf); m.err != nil {
			return
		}
		m.buf = m.buf[:0]
	}
	if len(p) >= cap(m.buf) {
		_, m.err = m.w.Write(p)
		return
	}
	m.buf = append(m.buf, p...)
}

// room makes sure the buffer has n bytes free (n <= pieceBufSize), writing
// it out if need be, and returns it: the caller appends at most n bytes
// and stores the result in m.buf.
func (m *msgPieces) room(n int) []byte {
	if cap(m.buf)-len(m.buf) >= n || m.err != nil {
		return m.buf
	}
	if m.w == nil {
		if m.w, m.err = m.open(); m.err != nil {
			return m.buf
		}
	}
	_, m.err = m.w.Write(m.buf)
	m.buf = m.buf[:0]
	return m.buf
}

// appendPiece adds what f appends to the slice it is given: in place when
// it fits the buffer.
func (m *msgPieces) appendPiece(f func([]byte) []byte) {
	n := len(m.buf)
	b := f(m.buf)
	if len(b) <= cap(m.buf) {
		m.buf = b // appended in place
		return
	}
	m.write(b[n:]) // f outgrew the buffer: b is a copy, m.buf unchanged
}

// finish ends the message: whole, when it was never opened, it goes to
// whole(rest) (nil: the writer open would return); else the rest goes to
// the opened writer and then to end (when set). It returns the first
// error and releases the buffer; m must not be used after.
func (m *msgPieces) finish(whole func([]byte) error, end func() error) error {
	err := m.err
	switch {
	case err != nil:
	case m.w == nil && whole != nil:
		err = whole(m.buf)
	default:
		if m.w == nil {
			m.w, err = m.open()
		}
		if err == nil && len(m.buf) > 0 {
			_, err = m.w.Write(m.buf)
		}
		if err == nil && end != nil {
			err = end()
		}
	}
	*m.bp = m.buf[:0]
	pieceBufs.Put(m.bp)
	m.bp, m.buf, m.w = nil, nil, nil
	return err
}
