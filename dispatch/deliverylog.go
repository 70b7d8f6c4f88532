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
}

func newDeliveryLog(size int) deliveryLog {
	return deliveryLog{buf: make([]*delivery, size), byID: make(map[string]*delivery)}
}

// add records dl, dropping the oldest entry when full (reported as true).
func (l *deliveryLog) add(dl *delivery) (dropped bool) {
	if old := l.buf[l.next]; old != nil {
		delete(l.byID, old.ID)
		l.respBytes -= responseBytes(old.History)
		dropped = true
	} else {
		l.n++
	}
	l.buf[l.next] = dl
	l.byID[dl.ID] = dl
	l.respBytes += responseBytes(dl.History)
	l.next = (l.next + 1) % len(l.buf)
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
	if !inLog {
		return
	}
	l.respBytes += len(a.Response)
	for i := l.n; i >= 1 && l.respBytes > MaxResponseBytes; i-- { // oldest first
		old := l.buf[(l.next-i+len(l.buf))%len(l.buf)]
		for j := range old.History {
			if l.respBytes <= MaxResponseBytes {
				break
			}
			if r := old.History[j].Response; r != "" && (old != dl || j < len(old.History)-1) {
				old.History[j].Response = ""
				l.respBytes -= len(r)
			}
		}
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
