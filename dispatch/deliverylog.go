package dispatch

import (
	"slices"

	"github.com/eventgate/eventgate/store"
)

// MaxResponseBytes bounds the response bodies one webhook's delivery log
// keeps in its attempt histories (each at most store.MaxResponseBody):
// past it the oldest bodies are dropped, the attempts themselves kept.
const MaxResponseBytes = 1 << 20

// deliveryLog keeps an endpoint's newest deliveries, a fixed-size ring,
// with their attempt histories. Guarded by the endpoint's mutex.
type deliveryLog struct {
	buf       []*delivery
	next      int // slot of the next add
	n         int
	byID      map[string]*delivery
	respBytes int // response bodies held in histories
	// bare counts the oldest deliveries known to hold no response body
	// (positions 0..bare-1 from the oldest): dropping bodies starts after
	// them, so it costs nothing per attempt once they are gone.
	bare int
}

func newDeliveryLog(size int) deliveryLog {
	return deliveryLog{buf: make([]*delivery, size), byID: make(map[string]*delivery)}
}

// oldest is the slot of the oldest delivery.
func (l *deliveryLog) oldest() int {
	if l.n < len(l.buf) {
		return 0
	}
	return l.next
}

// pos is slot's position from the oldest delivery.
func (l *deliveryLog) pos(slot int) int { return (slot - l.oldest() + len(l.buf)) % len(l.buf) }

// add records dl, dropping the oldest entry when full (reported as true).
func (l *deliveryLog) add(dl *delivery) (dropped bool) {
	if old := l.buf[l.next]; old != nil {
		delete(l.byID, old.ID)
		l.respBytes -= responseBytes(old.History)
		l.bare = max(0, l.bare-1) // the oldest went: the others move up
		dropped = true
	} else {
		l.n++
	}
	dl.slot = l.next
	l.buf[l.next] = dl
	l.byID[dl.ID] = dl
	l.next = (l.next + 1) % len(l.buf)
	if b := responseBytes(dl.History); b > 0 { // adopted with its history
		l.respBytes += b
		l.bare = min(l.bare, l.pos(dl.slot))
		l.dropBodies(dl)
	}
	return dropped
}

// addAttempt appends a to dl's history, then drops the oldest response
// bodies while the log holds more than MaxResponseBytes of them.
func (l *deliveryLog) addAttempt(dl *delivery, a store.AttemptRecord) {
	inLog := l.byID[dl.ID] == dl // else its bytes are not (or no longer) counted
	if inLog && len(dl.History) >= store.MaxAttemptHistory {
		l.respBytes -= len(dl.History[1].Response) // AddAttempt drops it
	}
	dl.AddAttempt(a)
	if !inLog || a.Response == "" {
		return
	}
	l.respBytes += len(a.Response)
	l.bare = min(l.bare, l.pos(dl.slot))
	l.dropBodies(dl)
}

// dropBodies drops response bodies, oldest delivery first, while more than
// MaxResponseBytes are held, keeping keep's newest attempt's.
func (l *deliveryLog) dropBodies(keep *delivery) {
	for l.respBytes > MaxResponseBytes && l.bare < l.n {
		old := l.buf[(l.oldest()+l.bare)%len(l.buf)]
		last := len(old.History)
		if old == keep {
			last-- // the attempt just added keeps its body
		}
		for j := 0; j < last && l.respBytes > MaxResponseBytes; j++ {
			l.respBytes -= len(old.History[j].Response)
			old.History[j].Response = ""
		}
		if responseBytes(old.History) > 0 {
			return // over budget by keep's newest body alone, or done
		}
		l.bare++
	}
}

func responseBytes(h []store.AttemptRecord) int {
	n := 0
	for _, a := range h {
		n += len(a.Response)
	}
	return n
}

func (l *deliveryLog) find(id string) *delivery { return l.byID[id] }

// list returns copies without their histories, newest first, only those
// in status unless it is "", starting after delivery before unless it is
// "" (an id not in the log: nothing).
func (l *deliveryLog) list(status store.DeliveryStatus, limit int, before string) []store.Delivery {
	out := make([]store.Delivery, 0, min(limit, l.n))
	skipping := before != ""
	for i := 1; i <= l.n && len(out) < limit; i++ {
		dl := l.buf[(l.next-i+len(l.buf))%len(l.buf)]
		if skipping {
			skipping = dl.ID != before
			continue
		}
		if status == "" || dl.Status == status {
			d := dl.Delivery
			d.History = nil
			out = append(out, d)
		}
	}
	return out
}

// detail returns a copy of delivery id with its history.
func (l *deliveryLog) detail(id string) (store.Delivery, bool) {
	dl := l.byID[id]
	if dl == nil {
		return store.Delivery{}, false
	}
	d := dl.Delivery
	d.History = slices.Clone(d.History)
	return d, true
}
