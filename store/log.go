package store

import (
	"context"
	"errors"
)

// Errors returned by Log implementations.
var (
	// ErrNotFound: the seq was never stored or has been overwritten.
	ErrNotFound = errors.New("not found")
	// ErrClosed: the log has been closed.
	ErrClosed = errors.New("log closed")
	// ErrBatchTooLarge: a batch larger than the log can hold at once.
	ErrBatchTooLarge = errors.New("batch larger than the log's capacity")
	// ErrEventTooLarge: an event larger than the log can store.
	ErrEventTooLarge = errors.New("event larger than the log can store")
	// ErrUnavailable: the log did not take or confirm a write now (a
	// backend without quorum, a timeout); the same write may succeed
	// later, and an event with an id is not stored twice.
	ErrUnavailable = errors.New("log unavailable")
)

// Gap names seqs a reader asked for that are no longer stored.
type Gap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Bounds describes what a log holds now.
type Bounds struct {
	Oldest uint64 `json:"oldest"` // oldest seq still stored; 0 when empty
	Newest uint64 `json:"newest"` // newest seq stored; 0 when empty
	Epoch  string `json:"epoch"`  // identity of this log's lifetime
}

// Page is the answer to Log.Read.
type Page struct {
	Records []Record
	// Next is the seq to pass as after to continue: every seq up to Next was
	// examined (and matching ones returned or reported in Gap).
	Next uint64
	// Gap is set when after was behind Oldest: those seqs were overwritten.
	Gap *Gap
	Bounds
}

// Log is the ordered event log: the spine every reader is a cursor over.
// Implementations are safe for concurrent use; appends never wait for
// readers.
type Log interface {
	// Append stores the events of batch atomically (all or none) with
	// consecutive seqs, in batch order, and appends one Appended per event
	// to out. An event whose Source+ID repeats one still stored is not
	// stored again: its Appended carries the original seq and Duplicate.
	// Append may call Encode on each event; see Event.Encode for ownership.
	// Errors: ErrBatchTooLarge, ErrEventTooLarge, ErrUnavailable (retry
	// later), ErrClosed, or ctx's.
	Append(ctx context.Context, batch []Event, out []Appended) ([]Appended, error)
	// Read returns up to limit records with seq > after matching f, oldest
	// first, appended to dst[:0].
	Read(ctx context.Context, after uint64, limit int, f Filter, dst []Record) (Page, error)
	// Get returns the record stored under seq, or ErrNotFound.
	Get(ctx context.Context, seq uint64) (Record, error)
	// Bounds reports oldest, newest and epoch. It never blocks on appends
	// for long and is cheap enough to call per read.
	Bounds() Bounds
	// Wait returns a channel that is closed once Newest > after or the log
	// is closed (a shared log may close it a moment later, once the events
	// can be read from its memory: natsjs); it returns Ready itself when
	// one of those holds at the call. It never delays an appender.
	Wait(after uint64) <-chan struct{}
	// Close releases the log; pending Wait channels are closed.
	Close() error
}

// Ready is a closed channel: what Wait returns when there is no need to
// wait, and what a reader waits on to go round again at once.
var Ready <-chan struct{} = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
