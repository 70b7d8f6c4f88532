package natsjs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/eventgate/eventgate/store"
	"github.com/nats-io/nats.go"
)

// TestAppendError: what a retry may cure is ErrUnavailable (a 503 the
// client retries); what it cannot is not.
func TestAppendError(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		closed bool
		err    error
		want   error // nil: err itself
	}{
		{"our deadline", live, false, fmt.Errorf("publish: %w", context.DeadlineExceeded), store.ErrUnavailable},
		{"nats timeout", live, false, nats.ErrTimeout, store.ErrUnavailable},
		{"no responders", live, false, fmt.Errorf("natsjs: no stream answers on x: %w", nats.ErrNoResponders), store.ErrUnavailable},
		{"connection closed", live, false, nats.ErrConnectionClosed, store.ErrUnavailable},
		{"reconnecting", live, false, nats.ErrConnectionReconnecting, store.ErrUnavailable},
		{"no quorum", live, false, &apiError{Code: 503, ErrCode: 10008, Description: "JetStream system temporarily unavailable"}, store.ErrUnavailable},
		{"ids stored meanwhile", live, false, &apiError{Code: 400, ErrCode: errCodeBatchDuplicate}, store.ErrUnavailable},
		{"over max_msg_size", live, false, &apiError{Code: 400, ErrCode: errCodeMaxMsgSize}, store.ErrEventTooLarge},
		{"caller gone", gone, false, nats.ErrTimeout, context.Canceled},
		{"log closed", live, true, nats.ErrConnectionClosed, store.ErrClosed},
		{"wrong stream", live, false, errors.New(`natsjs: x is stored by stream "A", not "B"`), nil},
		{"bad request", live, false, &apiError{Code: 400, ErrCode: 10999}, nil},
	} {
		l := &Log{}
		l.stopped.Store(tc.closed)
		got := l.appendError(tc.ctx, tc.err)
		want := tc.want
		if want == nil {
			want = tc.err
		}
		if !errors.Is(got, want) {
			t.Errorf("%s: appendError(%v) = %v, want %v", tc.name, tc.err, got, want)
		}
		if tc.want == nil && (errors.Is(got, store.ErrUnavailable) || errors.Is(got, store.ErrEventTooLarge)) {
			t.Errorf("%s: %v classified as %v", tc.name, tc.err, got)
		}
	}
}
