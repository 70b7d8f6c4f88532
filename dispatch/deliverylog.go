package dispatch

import "github.com/eventgate/eventgate/store"

// deliveryLog keeps an endpoint's newest deliveries, a fixed-size ring.
type deliveryLog struct {
	buf  []*delivery
	next int // slot of the next add
	n    int
	byID map[string]*delivery
}

func newDeliveryLog(size int) deliveryLog {
	return deliveryLog{buf: make([]*delivery, size), byID: make(map[string]*delivery)}
}

// add records dl, dropping the oldest entry when full (reported as true).
func (l *deliveryLog) add(dl *delivery) (dropped bool) {
	if old := l.buf[l.next]; old != nil {
		delete(l.byID, old.ID)
		dropped = true
	} else {
		l.n++
	}
	l.buf[l.next] = dl
	l.byID[dl.ID] = dl
	l.next = (l.next + 1) % len(l.buf)
	return dropped
}

func (l *deliveryLog) find(id string) *delivery { return l.byID[id] }

// list returns copies, newest first.
func (l *deliveryLog) list(status store.DeliveryStatus, limit int) []store.Delivery {
	out := make([]store.Delivery, 0, min(limit, l.n))
	for i := 1; i <= l.n && len(out) < limit; i++ {
		dl := l.buf[(l.next-i+len(l.buf))%len(l.buf)]
		if status == "" || dl.Status == status {
			out = append(out, dl.Delivery)
		}
	}
	return out
}
