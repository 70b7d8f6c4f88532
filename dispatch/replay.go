package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventgate/eventgate/store"
)

// ErrReplayInProgress is returned by Replay while an earlier replay of the
// same webhook is still being read.
var ErrReplayInProgress = errors.New("a replay of this webhook is in progress")

// replayRange is a replay being read: a second cursor over the log, next
// < seq <= until, read lazily by the endpoint goroutine as slots and
// tokens allow. Guarded by the endpoint's mutex.
type replayRange struct {
	next, until uint64
}

// ReplayResult is what Replay queued.
type ReplayResult struct {
	// Queued is how many buffered events in the range match the webhook's
	// types now; each becomes a new delivery. One overwritten before the
	// replay reaches it is recorded as a failed delivery instead.
	Queued int
	// Gap is the part of the range already overwritten; nil when none.
	Gap *store.Gap
	// Until is the range's end as applied (capped at the newest seq).
	Until uint64
}

// replayCountPage is how many records Replay examines per read while it
// counts the range.
const replayCountPage = 1000

// Replay re-delivers the buffered events of webhook id with after < seq
// <= until that match its types (and are not operational events about
// this webhook), through the normal path: new deliveries, signed, rate
// limited, retried and logged, with the same webhook-id as before. until
// is capped at the log's newest seq. The range is not copied: it becomes
// a second cursor that the endpoint reads lazily, sharing its slots with
// live events, so a replay costs memory for the range's bounds only.
// Errors: store.ErrNotFound (wrapped), ErrReplayInProgress while an
// earlier replay is unread (one range at a time per webhook), an error for
// until < after, and the log's errors.
func (d *Dispatcher) Replay(ctx context.Context, id string, after, until uint64) (ReplayResult, error) {
	if until < after {
		return ReplayResult{}, fmt.Errorf("until %d is before after %d", until, after)
	}
	ep, err := d.endpoint(ctx, id)
	if err != nil {
		return ReplayResult{}, err
	}
	ep.mu.Lock()
	busy, filter := ep.replay != nil, ep.filter
	ep.mu.Unlock()
	if busy {
		return ReplayResult{}, ErrReplayInProgress
	}
	res := ReplayResult{Until: min(until, d.log.Bounds().Newest)}
	from := after
	var buf []store.Record
	for cursor := after; cursor < res.Until; {
		page, err := d.log.Read(ctx, cursor, replayCountPage, filter, buf[:0])
		if err != nil {
			return ReplayResult{}, err
		}
		if page.Gap != nil && res.Gap == nil && cursor == after {
			g := store.Gap{From: page.Gap.From, To: min(page.Gap.To, res.Until)}
			res.Gap, from = &g, g.To
		}
		for _, r := range page.Records {
			if r.Seq <= res.Until && !ep.isSelf(r) {
				res.Queued++
			}
		}
		buf = page.Records
		clear(buf)
		if page.Next <= cursor {
			break
		}
		cursor = page.Next
	}
	if res.Queued == 0 {
		return res, nil
	}
	ep.mu.Lock()
	if ep.replay != nil {
		ep.mu.Unlock()
		return ReplayResult{}, ErrReplayInProgress
	}
	ep.replay = &replayRange{next: from, until: res.Until}
	ep.mu.Unlock()
	ep.poke()
	d.metrics.replays.Inc()
	d.metrics.replayQueued.Add(float64(res.Queued))
	d.cfg.Logger.Info("webhook replay queued", "webhook", id, "after", after, "until", res.Until, "queued", res.Queued)
	return res, nil
}

// readReplay reads up to n events of the replay range and launches their
// first attempts; it returns how many it launched. Called by the endpoint
// goroutine without the lock.
func (e *endpoint) readReplay(rp *replayRange, n int, filter store.Filter, buf *[]store.Record) int {
	e.mu.Lock()
	from, until := rp.next, rp.until
	e.mu.Unlock()
	page, err := e.d.log.Read(e.ctx, from, n, filter, (*buf)[:0])
	if err != nil {
		if e.ctx.Err() == nil {
			e.d.cfg.Logger.Error("webhook cannot read the log for a replay", "webhook", e.id, "err", err)
		}
		return 0
	}
	*buf = page.Records
	recs, next := page.Records, page.Next
	for len(recs) > 0 && recs[len(recs)-1].Seq > until {
		recs = recs[:len(recs)-1]
	}
	recs = e.dropSelf(recs)
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	defer clear(*buf)
	if e.replay != rp || rp.next != from || e.deleted {
		return 0
	}
	if page.Gap != nil {
		g := *page.Gap
		g.To = min(g.To, until)
		e.recordGapLocked(g, now)
	}
	for i := range recs {
		e.takeLocked(recs[i], now, store.OriginReplay)
	}
	rp.next = next
	if next >= until || next <= from && len(page.Records) == 0 {
		e.replay = nil // done (or nothing more to read: the log ends before until)
	}
	return len(recs)
}
