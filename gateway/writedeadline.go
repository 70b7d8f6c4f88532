package gateway

import (
	"context"
	"errors"
	"time"
)

// writeDeadline bounds a stream's Sends by WriteTimeout with one timer and
// one context for the stream's life, where a context.WithTimeout per
// message made a timer, a context and its registration with the parent
// each time. Used only by the stream's goroutine; the zero value is ready.
type writeDeadline struct {
	ctx    writeCtx
	cancel context.CancelCauseFunc
	timer  *time.Timer // nil until the first Send, and after one timed out
}

// writeCtx is what a Send gets: the stream's context, ended by the timer
// too, with this Send's deadline. Err reports a passed deadline as
// context.DeadlineExceeded, as a context.WithTimeout's does.
type writeCtx struct {
	context.Context
	deadline time.Time
}

// Deadline implements context.Context.
func (c *writeCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Err implements context.Context.
func (c *writeCtx) Err() error {
	err := c.Context.Err()
	if err != nil && errors.Is(context.Cause(c.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

// start arms the deadline d from now and returns the context of one Send
// under parent (the same parent every time).
func (w *writeDeadline) start(parent context.Context, d time.Duration) context.Context {
	if w.timer == nil {
		ctx, cancel := context.WithCancelCause(parent)
		w.ctx.Context, w.cancel = ctx, cancel
		w.timer = time.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	} else {
		w.timer.Reset(d)
	}
	w.ctx.deadline = time.Now().Add(d)
	return &w.ctx
}

// done disarms the deadline after a Send and reports whether it passed;
// then that context is spent and the next start makes another.
func (w *writeDeadline) done() (timedOut bool) {
	if w.timer.Stop() {
		return false
	}
	w.cancel(context.DeadlineExceeded) // the timer's own call may not have run yet
	w.timer = nil
	return true
}

// stop releases the timer and the context, if any; the next start makes
// new ones.
func (w *writeDeadline) stop() {
	if w.timer != nil {
		w.timer.Stop()
		w.cancel(context.Canceled)
		w.timer = nil
	}
}
