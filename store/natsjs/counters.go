package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Per-webhook delivery totals are JetStream counters (a stream with
// AllowMsgCounter, <Stream>_COUNTERS): one subject per webhook and outcome,
// <Prefix>.counters.<id>.succeeded and .failed, each message an increment
// (Nats-Incr) that the server adds to the subject's total. They are shared
// by every gateway and survive restarts, as the delivery log does.

// hdrIncr is the header of a counter increment.
const hdrIncr = "Nats-Incr"

func (l *Log) countersStream() string { return l.cfg.Stream + "_COUNTERS" }

func (l *Log) counterSubj(id, outcome string) string {
	return l.cfg.Prefix + ".counters." + id + "." + outcome
}

// ensureCounters creates the counters' stream once per Log.
func (l *Log) ensureCounters(ctx context.Context) error {
	return l.ensureBookkeeping(ctx, &l.countersOK, jetstream.StreamConfig{
		Name:              l.countersStream(),
		Description:       "eventgate delivery totals per webhook",
		Subjects:          []string{l.cfg.Prefix + ".counters.>"},
		MaxMsgsPerSubject: 1, // the total is in the newest message
		AllowMsgCounter:   true,
	})
}

// Count implements store.DeliveryQueue with one plain publish per
// outcome counted (no acknowledgement awaited).
func (q *queue) Count(succeeded, failed uint64) {
	for _, c := range []struct {
		outcome string
		n       uint64
	}{{"succeeded", succeeded}, {"failed", failed}} {
		if c.n == 0 {
			continue
		}
		m := &nats.Msg{Subject: q.l.counterSubj(q.id, c.outcome), Header: nats.Header{hdrIncr: {"+" + strconv.FormatUint(c.n, 10)}}}
		if err := q.l.nc.PublishMsg(m); err != nil {
			q.l.log.Warn("natsjs: delivery count lost", "webhook", q.id, "outcome", c.outcome, "n", c.n, "err", err)
		}
	}
}

// Totals implements store.DeliveryQueue.
func (q *queue) Totals(ctx context.Context) (succeeded, failed uint64, err error) {
	ctx, cancel := q.l.withTimeout(ctx)
	defer cancel()
	if succeeded, err = q.l.counter(ctx, q.id, "succeeded"); err != nil {
		return 0, 0, err
	}
	if failed, err = q.l.counter(ctx, q.id, "failed"); err != nil {
		return 0, 0, err
	}
	return succeeded, failed, nil
}

// counter reads one total: 0 when nothing was counted yet.
func (l *Log) counter(ctx context.Context, id, outcome string) (uint64, error) {
	m, err := l.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+l.countersStream()+"."+l.counterSubj(id, outcome), nil)
	if err != nil {
		return 0, fmt.Errorf("natsjs: delivery totals of webhook %s: %w", id, err)
	}
	switch status := m.Header.Get(hdrStatus); status {
	case "":
	case "404":
		return 0, nil
	default:
		return 0, fmt.Errorf("natsjs: delivery totals of webhook %s: direct get answered %s %s", id, status, m.Header.Get("Description"))
	}
	var v struct {
		Val string `json:"val"`
	}
	if err := json.Unmarshal(m.Data, &v); err != nil {
		return 0, fmt.Errorf("natsjs: delivery totals of webhook %s: %w", id, err)
	}
	n, err := strconv.ParseUint(v.Val, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("natsjs: delivery totals of webhook %s: %q: %w", id, v.Val, errors.ErrUnsupported)
	}
	return n, nil
}

// purgeCounters drops webhook id's totals.
func (l *Log) purgeCounters(ctx context.Context, id string) error {
	s, err := l.js.Stream(ctx, l.countersStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err == nil {
		err = s.Purge(ctx, jetstream.WithPurgeSubject(l.cfg.Prefix+".counters."+id+".>"))
	}
	if err != nil {
		return fmt.Errorf("natsjs: delete delivery totals of webhook %s: %w", id, err)
	}
	return nil
}

// ensureBookkeeping creates or updates, once per Log (*done, guarded by
// mu), one of the streams that keep the gateway's own records: the
// delivery log, the totals. cfg gets the Log's storage and replicas,
// limits retention, discard old and direct gets.
//
// On one server with file storage they are written to disk asynchronously
// (JetStream's async persist mode): each stored record would otherwise
// cost a write system call, as much as the event it is about. A crash of
// the server process can then lose the last few milliseconds of records,
// never an event or a delivery. A replicated stream is flushed
// asynchronously anyway (its Raft log has the records), and a stream made
// before keeps its mode, which JetStream does not let change.
func (l *Log) ensureBookkeeping(ctx context.Context, done *bool, cfg jetstream.StreamConfig) error {
	l.mu.Lock()
	ok := *done
	l.mu.Unlock()
	if ok {
		return nil
	}
	cfg.Storage, cfg.Replicas = jetstream.FileStorage, l.cfg.Replicas
	if l.cfg.Memory {
		cfg.Storage = jetstream.MemoryStorage
	}
	cfg.Retention, cfg.Discard, cfg.AllowDirect = jetstream.LimitsPolicy, jetstream.DiscardOld, true
	if cfg.Storage == jetstream.FileStorage && cfg.Replicas <= 1 {
		cfg.PersistMode = jetstream.AsyncPersistMode
	}
	if s, err := l.js.Stream(ctx, cfg.Name); err == nil {
		cfg.PersistMode = s.CachedInfo().Config.PersistMode
	}
	if _, err := l.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("natsjs: stream %s: %w", cfg.Name, err)
	}
	l.mu.Lock()
	*done = true
	l.mu.Unlock()
	return nil
}
