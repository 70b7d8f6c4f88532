package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
)

// sharedLogQueue is a webhook queue whose shared delivery log holds one
// delivery; it records the seqs Forget settles.
type sharedLogQueue struct {
	store.DeliveryQueue // the methods these tests do not call
	d                   store.Delivery
	forgot              []uint64
}

func (q *sharedLogQueue) Delivery(context.Context, string) (store.Delivery, error) { return q.d, nil }
func (q *sharedLogQueue) Forget(seq uint64) error {
	q.forgot = append(q.forgot, seq)
	return nil
}

// TestAdoptedDeliveryCounts: a delivery adopted from the shared log for a
// manual retry is counted here only when its retry waits in the queue
// (then a manual success settles that retry). One that ended elsewhere,
// or that another gateway holds (pending: released by a gateway that
// stopped, taken by another at once), moves no count here, and a manual
// success leaves the queue alone.
func TestAdoptedDeliveryCounts(t *testing.T) {
	for _, tc := range []struct {
		status      store.DeliveryStatus
		counted     bool     // a manual outcome here is counted
		wantForgets []uint64 // after a manual success
	}{
		{store.DeliveryRetrying, true, []uint64{42}},
		{store.DeliveryPending, false, nil},
		{store.DeliverySucceeded, false, nil},
		{store.DeliveryFailed, false, nil},
	} {
		ring := store.NewRing(16)
		d := New(gateway.NewPublisher(ring), Config{AllowPrivateTargets: true})
		e, err := d.newEndpoint(store.Webhook{ID: "wh_a", URL: "http://127.0.0.1:9/hook", Enabled: true, Secret: signature.NewSecret()})
		if err != nil {
			t.Fatal(err)
		}
		q := &sharedLogQueue{d: store.Delivery{ID: queuedID(42), WebhookID: "wh_a", EventSeq: 42, EventID: "evt_42", Status: tc.status, Attempts: 1}}
		src := &queueSource{e: e, q: q}
		e.src = src
		if err := src.adopt(context.Background(), queuedID(42)); err != nil {
			t.Fatal(err)
		}
		e.mu.Lock()
		dl := e.log.find(queuedID(42))
		if dl == nil || !dl.away || dl.final == tc.counted {
			e.mu.Unlock()
			t.Fatalf("%s: adopted as %+v, want away and counted=%v", tc.status, dl, tc.counted)
		}
		dl.Status = store.DeliverySucceeded // as finish books a manual success
		e.finalLocked(dl, time.Now(), true)
		settle := src.settleLocked(dl, verdictAck, 0, false)
		succeeded, inSystem := e.succeeded, e.inSystem
		e.mu.Unlock()
		if settle != nil {
			if err := settle(); err != nil {
				t.Fatal(err)
			}
		}
		if want := map[bool]uint64{true: 1, false: 0}[tc.counted]; succeeded != want || inSystem != 0 {
			t.Errorf("%s: a manual success counted %d (in system %d), want %d", tc.status, succeeded, inSystem, want)
		}
		if !slices.Equal(q.forgot, tc.wantForgets) {
			t.Errorf("%s: a manual success settled %v in the queue, want %v", tc.status, q.forgot, tc.wantForgets)
		}
		e.cancel()
		_ = ring.Close()
	}
}

// settleRecorder is a queued delivery's settler that records what it was
// told.
type settleRecorder struct {
	store.Settler
	told *[]string
}

func (r settleRecorder) NakWithDelay(time.Duration) error {
	*r.told = append(*r.told, "nak")
	return nil
}

func (r settleRecorder) InProgress() error {
	*r.told = append(*r.told, "in progress")
	return nil
}

// TestPrefetchKeepsStale: deliveries wait in the prefetch while every
// slot is taken; the endpoint asks to wake when one has waited a third of
// AckWait, and then tells the queue it still holds those that waited that
// long (their AckWait starts again; a nak would count a delivery), keeping
// them in their place.
func TestPrefetchKeepsStale(t *testing.T) {
	d, e, src := queueEndpoint(t, &sharedLogQueue{})
	src.pulls = []*pull{{asked: 8, end: func() {}}}
	e.mu.Lock()
	e.inFlight = d.cfg.Concurrency // every slot taken: what comes waits in ready
	e.mu.Unlock()
	var told []string
	queued := func(seq uint64) store.Queued {
		return store.Queued{Record: store.Record{Seq: seq, ID: "e", Type: "a"}, Delivered: 1, Msg: settleRecorder{told: &told}}
	}
	src.received(queued(1), true)
	src.received(queued(2), true)
	hold := src.holdLimit()
	if hold <= 0 || hold >= d.ackWait() {
		t.Fatalf("holdLimit %v, AckWait %v", hold, d.ackWait())
	}
	src.readyAt[0] = src.readyAt[0].Add(-hold) // the first has waited its limit, the second not
	second := src.readyAt[1]
	now := time.Now()
	_, wake := src.take(true, 0, false, nil, time.Time{}, now)
	if !slices.Equal(told, []string{"in progress"}) {
		t.Fatalf("the queue was told %v, want the stale delivery in progress", told)
	}
	if len(src.ready) != 2 || src.ready[0].Seq != 1 || !src.readyAt[0].Equal(now) {
		t.Fatalf("ready %+v at %v, want both kept in order, the first kept now", src.ready, src.readyAt)
	}
	if want := second.Add(hold); !wake.Equal(want) {
		t.Fatalf("wake at %v, want %v: when the second waits its limit", wake, want)
	}
}

// fetchRecorder is a queue that records the pulls asked of it.
type fetchRecorder struct {
	store.DeliveryQueue
	asked [][2]int // n, maxBytes
}

func (q *fetchRecorder) Fetch(_ context.Context, n, maxBytes int) (<-chan store.Queued, error) {
	q.asked = append(q.asked, [2]int{n, maxBytes})
	return make(chan store.Queued), nil
}

// TestPrefetchBoundedInBytes: a pull of events whose recent size could
// pass the room the prefetch has left asks for no more bytes than that,
// none is made while the prefetch holds its bytes' worth, and small
// events are pulled by count alone.
func TestPrefetchBoundedInBytes(t *testing.T) {
	q := &fetchRecorder{}
	d, e, src := queueEndpoint(t, q)
	src.pulls = []*pull{{asked: 2, end: func() {}}}
	e.mu.Lock()
	e.inFlight = d.cfg.Concurrency
	e.mu.Unlock()
	event := func(seq uint64, size int) store.Queued {
		return store.Queued{Record: store.Record{Seq: seq, ID: "e", Type: "a", JSON: make([]byte, size)}, Delivered: 1}
	}
	src.received(event(1, 3<<20), true)
	src.received(event(2, 2<<20), true)
	src.received(store.Queued{}, false) // the pull ends
	src.take(true, 0, false, nil, time.Time{}, time.Now())
	if len(q.asked) != 1 || q.asked[0][1] != prefetchBytes-5<<20 {
		t.Fatalf("pulls %v, want one bounded to %d bytes", q.asked, prefetchBytes-5<<20)
	}
	src.received(event(3, 3<<20), true) // from the new pull: the prefetch holds 8 MiB
	src.received(store.Queued{}, false)
	src.take(true, 0, false, nil, time.Time{}, time.Now())
	if len(q.asked) != 1 {
		t.Fatalf("pulls %v, want none while the prefetch is full in bytes", q.asked)
	}

	small := &fetchRecorder{}
	src = &queueSource{e: e, q: small}
	e.src = src // the same endpoint, a fresh source
	src.pulls = []*pull{{asked: 2, end: func() {}}}
	src.received(event(4, 300), true)
	src.received(store.Queued{}, false)
	src.take(true, 0, false, nil, time.Time{}, time.Now())
	if len(small.asked) != 1 || small.asked[0][1] != 0 {
		t.Fatalf("pulls %v, want one bounded by count alone for 300-byte events", small.asked)
	}
}

// TestPullPausesAfterAnEmptyEnd: a pull the store ends at once with
// nothing (no responders, the consumer gone) is not asked again in a
// loop: the next one waits pullPause, and the endpoint is told when.
func TestPullPausesAfterAnEmptyEnd(t *testing.T) {
	q := &fetchRecorder{}
	d, _, src := queueEndpoint(t, q)
	now := time.Now()
	src.take(true, d.cfg.Concurrency, false, nil, time.Time{}, now)
	if len(q.asked) != 1 {
		t.Fatalf("pulls %v, want one from an idle endpoint", q.asked)
	}
	src.received(store.Queued{}, false) // ended at once, with nothing
	_, wake := src.take(true, d.cfg.Concurrency, false, nil, time.Time{}, time.Now())
	if len(q.asked) != 1 {
		t.Fatalf("pulls %v, want none right after a pull that ended at once", q.asked)
	}
	if wake.Before(now.Add(pullPause)) || wake.After(time.Now().Add(pullPause)) {
		t.Fatalf("wake at %v, want pullPause after the empty end", wake)
	}
	src.take(true, d.cfg.Concurrency, false, nil, time.Time{}, wake)
	if len(q.asked) != 2 {
		t.Fatalf("pulls %v, want another once the pause is over", q.asked)
	}
}

// queueEndpoint returns an endpoint of a dispatcher with Concurrency 2 on
// a ring, its source q's queueSource, for the queue source's own tests.
func queueEndpoint(t *testing.T, q store.DeliveryQueue) (*Dispatcher, *endpoint, *queueSource) {
	t.Helper()
	ring := store.NewRing(16)
	t.Cleanup(func() { _ = ring.Close() })
	d := New(gateway.NewPublisher(ring), Config{AllowPrivateTargets: true, Concurrency: 2})
	e, err := d.newEndpoint(store.Webhook{ID: "wh_q", URL: "http://127.0.0.1:9/hook", Enabled: true, Secret: signature.NewSecret()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cancel)
	src := &queueSource{e: e, q: q}
	e.src = src
	return d, e, src
}

// TestReceivedHonoursTheEndpointsBounds: what a pull brings starts at
// once only within the bounds step applies (a rate-limit token, room
// under MaxRetrying, a free slot); the rest waits in ready, in order, and
// starts when the bound allows.
func TestReceivedHonoursTheEndpointsBounds(t *testing.T) {
	queued := func(seq uint64) store.Queued {
		return store.Queued{Record: store.Record{Seq: seq, ID: "e", Type: "a"}, Delivered: 1, Msg: settleRecorder{told: new([]string)}}
	}
	received := func(src *queueSource, seqs ...uint64) {
		src.pulls = []*pull{{asked: len(seqs), end: func() {}}}
		for _, s := range seqs {
			src.received(queued(s), true)
		}
	}
	readySeqs := func(src *queueSource) []uint64 {
		var out []uint64
		for _, m := range src.ready {
			out = append(out, m.Seq)
		}
		return out
	}

	t.Run("rate limit", func(t *testing.T) {
		_, e, src := queueEndpoint(t, &sharedLogQueue{})
		e.mu.Lock()
		e.hook.RateLimit = 1 // one token at first (the burst), the next a second later
		e.bucket.set(1, 0, time.Now())
		e.mu.Unlock()
		received(src, 1, 2, 3)
		e.mu.Lock()
		inFlight, ready := e.inFlight, readySeqs(src)
		e.mu.Unlock()
		if inFlight != 1 || !slices.Equal(ready, []uint64{2, 3}) {
			t.Fatalf("%d in flight, %v ready; want 1 started (one token) and 2, 3 waiting", inFlight, ready)
		}
		// A second later the next token starts the next one, and only it.
		e.mu.Lock()
		e.inFlight = 0 // the first attempt has ended
		e.mu.Unlock()
		src.take(true, 1, false, nil, time.Time{}, time.Now().Add(time.Second))
		e.mu.Lock()
		defer e.mu.Unlock()
		if ready := readySeqs(src); !slices.Equal(ready, []uint64{3}) || e.inFlight != 1 {
			t.Fatalf("%d in flight, %v ready; want the next one started with its token", e.inFlight, ready)
		}
	})

	t.Run("max retrying", func(t *testing.T) {
		d, e, src := queueEndpoint(t, &sharedLogQueue{})
		e.mu.Lock()
		e.retrying = d.cfg.MaxRetrying - 1 // room for one attempt: it may come back as a retry
		e.mu.Unlock()
		received(src, 1, 2)
		e.mu.Lock()
		defer e.mu.Unlock()
		if ready := readySeqs(src); e.inFlight != 1 || !slices.Equal(ready, []uint64{2}) {
			t.Fatalf("%d in flight, %v ready; want 1 started and 2 waiting under MaxRetrying %d", e.inFlight, ready, d.cfg.MaxRetrying)
		}
	})
}

// ackRecorder is a queued delivery's settler that records the seqs acked.
type ackRecorder struct {
	store.Settler
	seq   uint64
	acked chan<- uint64
}

func (r ackRecorder) Ack() error {
	r.acked <- r.seq
	return nil
}

// TestWorkersChainThePrefetch: an attempt worker that finishes starts
// the next prefetched delivery itself, so a queue's deliveries keep
// flowing with no hand-off to the endpoint goroutine (not running here),
// each attempted once and acked once it succeeded.
func TestWorkersChainThePrefetch(t *testing.T) {
	got := make(chan uint64, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Seq uint64 `json:"seq"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		got <- ev.Seq
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	d, e, src := queueEndpoint(t, &sharedLogQueue{})
	defer e.workerWG.Wait()
	defer e.cancel()
	e.mu.Lock()
	e.hook.URL = srv.URL
	e.chain = true
	e.mu.Unlock()
	acked := make(chan uint64, 8)
	const n = 5
	src.pulls = []*pull{{asked: n, end: func() {}}}
	for seq := uint64(1); seq <= n; seq++ {
		src.received(store.Queued{
			Record:    store.Record{Seq: seq, ID: fmt.Sprint("e", seq), Type: "a", JSON: fmt.Appendf(nil, `{"seq":%d}`, seq)},
			Delivered: 1, Msg: ackRecorder{seq: seq, acked: acked},
		}, true)
	}
	e.mu.Lock()
	waiting := len(src.ready)
	e.mu.Unlock()
	if waiting != n-d.cfg.Concurrency {
		t.Fatalf("%d prefetched, want %d beside %d in flight", waiting, n-d.cfg.Concurrency, d.cfg.Concurrency)
	}
	timeout := time.After(10 * time.Second)
	var order []uint64
	for range n {
		select {
		case seq := <-got:
			order = append(order, seq)
		case <-timeout:
			t.Fatalf("attempted %v, want all %d: the prefetch waits for the endpoint goroutine", order, n)
		}
	}
	slices.Sort(order)
	if !slices.Equal(order, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("attempted %v, want each of 1..%d once", order, n)
	}
	seen := map[uint64]bool{}
	for range n {
		select {
		case seq := <-acked:
			seen[seq] = true
		case <-timeout:
			t.Fatalf("acked %v, want all %d", seen, n)
		}
	}
}

// TestTakeRechecksBoundsAfterChaining: step counts the free slots and
// the rate limit's tokens, then take starts prefetched deliveries in
// them; a worker may chain into the same slot, or spend the same token,
// in between. take checks again: neither Concurrency nor the rate limit
// is exceeded.
func TestTakeRechecksBoundsAfterChaining(t *testing.T) {
	prefetched := func(src *queueSource, n int) {
		src.pulls = []*pull{{asked: n, end: func() {}}}
		for seq := uint64(1); seq <= uint64(n); seq++ {
			src.received(store.Queued{Record: store.Record{Seq: seq, ID: fmt.Sprint("e", seq), Type: "a"}, Delivered: 1,
				Msg: settleRecorder{told: new([]string)}}, true)
		}
	}
	t.Run("slots", func(t *testing.T) {
		d, e, src := queueEndpoint(t, &sharedLogQueue{})
		defer e.workerWG.Wait()
		defer e.cancel()
		prefetched(src, 4) // 2 in flight, 2 prefetched
		e.mu.Lock()
		e.inFlight--                           // a worker's finish frees a slot
		free := d.cfg.Concurrency - e.inFlight // step counts it
		src.chainLocked(time.Now())            // the worker chains into it
		e.mu.Unlock()
		src.take(true, free, false, nil, time.Time{}, time.Now()) // take, with step's count
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.inFlight > d.cfg.Concurrency {
			t.Fatalf("%d attempts in flight, Concurrency %d", e.inFlight, d.cfg.Concurrency)
		}
	})
	t.Run("tokens", func(t *testing.T) {
		_, e, src := queueEndpoint(t, &sharedLogQueue{})
		defer e.workerWG.Wait()
		defer e.cancel()
		now := time.Now()
		e.mu.Lock()
		e.hook.RateLimit = 10 // a burst of 1, a token every 100 ms
		e.bucket.set(10, 0, now)
		e.mu.Unlock()
		prefetched(src, 3) // 1 started with the token, 2 prefetched
		later := now.Add(150 * time.Millisecond)
		e.mu.Lock()
		e.inFlight--                      // a worker's finish
		free := e.bucket.available(later) // step: one token earned
		src.chainLocked(later)            // the worker spends it
		e.mu.Unlock()
		src.take(true, free, false, nil, time.Time{}, later)
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.bucket.tokens < 0 {
			t.Fatalf("the bucket holds %v tokens: more attempts started than the rate limit allows", e.bucket.tokens)
		}
	})
}

// TestTakenOverDeliveryKeepsItsAge: a delivery the queue hands this
// gateway for a second time (a retry another gateway scheduled, or a
// handover) without a state of it here is dated by its event's store
// time, not by now: the shared log lists it by when it was created, and
// reads only its newest states.
func TestTakenOverDeliveryKeepsItsAge(t *testing.T) {
	_, e, src := queueEndpoint(t, &sharedLogQueue{})
	defer e.workerWG.Wait()
	defer e.cancel()
	stored := time.Now().Add(-time.Hour).Truncate(time.Second)
	src.pulls = []*pull{{asked: 2, end: func() {}}}
	for seq, delivered := range map[uint64]int{1: 1, 2: 3} {
		src.received(store.Queued{Record: store.Record{Seq: seq, ID: fmt.Sprint("e", seq), Type: "a", StoredAt: stored.UnixNano()},
			Delivered: delivered, Msg: settleRecorder{told: new([]string)}}, true)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if dl := e.log.find(queuedID(2)); dl == nil || !dl.CreatedAt.Equal(stored) {
		t.Fatalf("taken over: %+v, want created at the event's store time %v", dl, stored)
	}
	if dl := e.log.find(queuedID(1)); dl == nil || dl.CreatedAt.Before(stored.Add(time.Minute)) {
		t.Fatalf("first taken: %+v, want created now", dl)
	}
}

// feedQueue is a queue of n deliveries, handed out in order by Fetch;
// it records the states and acks it is given, and closes drained once
// all n are acked and recorded succeeded.
type feedQueue struct {
	store.DeliveryQueue
	mu        sync.Mutex
	next, n   uint64
	succeeded map[string]bool // recorded succeeded
	acked     int
	drained   chan struct{}
}

func newFeedQueue(n uint64) *feedQueue {
	return &feedQueue{n: n, succeeded: map[string]bool{}, drained: make(chan struct{})}
}

func (q *feedQueue) Fetch(ctx context.Context, want, _ int) (<-chan store.Queued, error) {
	ch := make(chan store.Queued, want)
	defer close(ch)
	q.mu.Lock()
	defer q.mu.Unlock()
	for ; want > 0 && q.next < q.n; want-- {
		q.next++
		ch <- store.Queued{Record: store.Record{Seq: q.next, ID: fmt.Sprint("e", q.next), Type: "a", JSON: []byte(`{}`)},
			Delivered: 1, Msg: feedSettler{q}}
	}
	return ch, nil
}

func (q *feedQueue) Record(ds ...store.Delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range ds {
		if d.Status == store.DeliverySucceeded {
			q.succeeded[d.ID] = true
		}
	}
	q.checkLocked()
}

func (q *feedQueue) Count(uint64, uint64) {}

// checkLocked closes drained once every delivery is acked and recorded.
func (q *feedQueue) checkLocked() {
	if uint64(q.acked) == q.n && uint64(len(q.succeeded)) == q.n {
		select {
		case <-q.drained:
		default:
			close(q.drained)
		}
	}
}

// progress returns the deliveries acked and recorded succeeded so far.
func (q *feedQueue) progress() (acked, recorded int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.acked, len(q.succeeded)
}

type feedSettler struct{ q *feedQueue }

func (s feedSettler) Ack() error {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	s.q.acked++
	s.q.checkLocked()
	return nil
}
func (feedSettler) NakWithDelay(time.Duration) error { return nil }
func (feedSettler) Term() error                      { return nil }
func (feedSettler) InProgress() error                { return nil }

// TestChainedQueueDrains: the endpoint goroutine and its chaining
// workers drain a queue to the end: every delivery attempted once and
// acked, every state written to the shared log, though workers wake the
// endpoint goroutine only when it has work (a missed wake-up stalls the
// prefetch or leaves states unwritten, and the test times out).
func TestChainedQueueDrains(t *testing.T) {
	const n = 3000
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	_, e, _ := queueEndpoint(t, nil)
	q := newFeedQueue(n)
	e.src = &queueSource{e: e, q: q}
	e.mu.Lock()
	e.hook.URL = srv.URL
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.run(); close(done) }()
	defer func() { e.cancel(); <-done }()
	select {
	case <-q.drained:
	case <-time.After(30 * time.Second):
		acked, recorded := q.progress()
		t.Fatalf("after 30 s: %d attempts, %d acked, %d recorded succeeded, of %d", attempts.Load(), acked, recorded, n)
	}
	if got := attempts.Load(); got != n {
		t.Fatalf("%d attempts for %d deliveries", got, n)
	}
}

// TestTwoFinishesStillWakeForTheirStates: two chaining workers book
// their attempts (each a retry: no counts) before either asks whether
// the endpoint goroutine has work; the states they noted are the first
// since its last flush, so its timer knows nothing of them: one of them
// must poke it, or the states wait for whatever wakes it next (up to the
// pull's fetchWait).
func TestTwoFinishesStillWakeForTheirStates(t *testing.T) {
	ring := store.NewRing(16)
	defer func() { _ = ring.Close() }()
	d := New(gateway.NewPublisher(ring), Config{AllowPrivateTargets: true, Concurrency: 3})
	e, err := d.newEndpoint(store.Webhook{ID: "wh_q", URL: "http://127.0.0.1:9/hook", Enabled: true, Secret: signature.NewSecret()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.cancel()
	src := &queueSource{e: e, q: &sharedLogQueue{}}
	e.src = src
	told := []string{}
	now := time.Now()
	e.mu.Lock()
	e.chain = true
	e.workers = 3 // no worker goroutines: the test plays them
	src.pulls = []*pull{{asked: 20, end: func() {}}}
	src.asked = 20 // a pull open on an idle queue: no pull to make
	for seq := uint64(1); seq <= 3; seq++ {
		src.takeLocked(store.Queued{Record: store.Record{Seq: seq, ID: "e", Type: "a"}, Delivered: 1, Msg: settleRecorder{told: &told}}, now)
	}
	e.mu.Unlock()
	j := [3]attemptJob{<-e.jobs, <-e.jobs, <-e.jobs}
	if due := src.flush(false); !due.IsZero() { // the endpoint goroutine's last flush: nothing noted
		t.Fatalf("flush due at %v, want nothing noted", due)
	}
	wakeA := e.finish(result{dl: j[0].dl, start: now, status: http.StatusInternalServerError})
	wakeB := e.finish(result{dl: j[1].dl, start: now, status: http.StatusInternalServerError})
	e.mu.Lock()
	defer e.mu.Unlock()
	src.chainLocked(time.Now())
	wakeA = wakeA || src.needsEndpointLocked()
	src.chainLocked(time.Now())
	wakeB = wakeB || src.needsEndpointLocked()
	if !wakeA && !wakeB && len(src.records) > 0 {
		t.Fatalf("%d states noted and neither worker wakes the endpoint goroutine", len(src.records))
	}
}
