package natsjs_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/natsjs"
	"github.com/eventgate/eventgate/store/storetest"
	"github.com/nats-io/nats.go/jetstream"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, natsjs.EncryptionKeySize)
	_, _ = rand.Read(k)
	return k
}

// TestWebhooksRegistrySealed runs the registry suite with an encryption
// key: sealing is invisible to the registry's users.
func TestWebhooksRegistrySealed(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	key := newKey(t)
	storetest.RunWebhooks(t, func(tb testing.TB) store.Webhooks {
		n := streams.Add(1)
		l := mustOpen(tb, natsjs.Config{Conn: nc, Stream: fmt.Sprintf("SEAL%d", n), Prefix: fmt.Sprintf("seal%d", n), Memory: true, EncryptionKey: key})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := l.OpenWebhooks(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		return r
	})
}

// TestWebhookValueAtRest: the bucket holds the API's snake_case names;
// with a key, no secret or header value in clear, and only that key reads
// them; a value stored by an earlier version (Go field names, clear) is
// still read.
func TestWebhookValueAtRest(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	w := store.Webhook{ID: "wh_1", URL: "https://example.com/hook", Types: []string{">"}, Enabled: true,
		Secret: "whsec_c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw==", PreviousSecret: "whsec_b2xkLXNlY3JldA==",
		PreviousExpires: time.Now().Add(time.Hour).UTC().Truncate(time.Second),
		Headers:         map[string]string{"Authorization": "Bearer tok-must-not-leak", "ID": "x"},
		CreatedAt:       time.Now().UTC().Truncate(time.Second), UpdatedAt: time.Now().UTC().Truncate(time.Second)}
	open := func(stream string, key []byte) (*natsjs.Webhooks, jetstream.KeyValue) {
		l := mustOpen(t, natsjs.Config{Conn: nc, Stream: stream, Prefix: strings.ToLower(stream), Memory: true, EncryptionKey: key})
		r, err := l.OpenWebhooks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.KeyValue(ctx, stream+"_WEBHOOKS")
		if err != nil {
			t.Fatal(err)
		}
		return r, kv
	}
	key := newKey(t)
	sealed, kv := open("SEALED", key)
	if err := sealed.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw := string(e.Value())
	for _, clear := range []string{"c2VjcmV0LXZhbHVl", "b2xkLXNlY3JldA", "tok-must-not-leak"} {
		if strings.Contains(raw, clear) {
			t.Errorf("the stored value holds %q in clear: %s", clear, raw)
		}
	}
	var top map[string]any
	if err := json.Unmarshal(e.Value(), &top); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"id", "url", "secret", "previous_secret", "previous_expires", "headers", "created_at"} {
		if _, ok := top[name]; !ok {
			t.Errorf("the stored value has no %q: %s", name, raw)
		}
	}
	got, err := sealed.Get(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret != w.Secret || got.PreviousSecret != w.PreviousSecret || got.Headers["Authorization"] != w.Headers["Authorization"] || !got.PreviousExpires.Equal(w.PreviousExpires) {
		t.Errorf("read back %+v, want %+v", got, w)
	}

	// The same bucket without the key, or with another one: refused, never garbage.
	for name, k := range map[string][]byte{"no key": nil, "another key": newKey(t)} {
		l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "SEALED", Prefix: "sealed", Memory: true, EncryptionKey: k})
		r, err := l.OpenWebhooks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Get(ctx, w.ID); !errors.Is(err, natsjs.ErrSealed) {
			t.Errorf("%s: Get = %v, want ErrSealed", name, err)
		}
	}

	// An earlier version's value: Go field names, in clear.
	old, oldKV := open("OLDFMT", key)
	legacy, _ := json.Marshal(w)
	if _, err := oldKV.Create(ctx, w.ID, legacy); err != nil {
		t.Fatal(err)
	}
	got, err = old.Get(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret != w.Secret || got.URL != w.URL || got.Headers["Authorization"] != w.Headers["Authorization"] {
		t.Errorf("legacy value read as %+v", got)
	}
}

// TestWebhooksRefuseAShortKey: a key of the wrong size is refused at once.
func TestWebhooksRefuseAShortKey(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	l := mustOpen(t, natsjs.Config{Conn: nc, Stream: "SHORT", Prefix: "short", Memory: true, EncryptionKey: []byte("too short")})
	if _, err := l.OpenWebhooks(context.Background()); err == nil {
		t.Error("OpenWebhooks took a 9-byte key")
	}
}
