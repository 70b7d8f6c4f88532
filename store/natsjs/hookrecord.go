package natsjs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventgate/eventgate/store"
)

// A webhook's value in the bucket: the API's snake_case names, and, with
// an encryption key, its secrets and custom header values sealed with
// AES-256-GCM ("enc:v1:" + base64 of nonce and ciphertext, the webhook id
// as additional data, so that a value cannot be moved to another
// webhook). Values stored by earlier versions (Go field names, clear
// text) are still read; the next update rewrites them.

// EncryptionKeySize is the length of Config.EncryptionKey.
const EncryptionKeySize = 32

// sealedPrefix starts a sealed value.
const sealedPrefix = "enc:v1:"

// ErrSealed is returned when a webhook's secrets are sealed and the Log
// has no key, or not the key that sealed them.
var ErrSealed = errors.New("natsjs: webhook secrets are encrypted with another key (or the gateway has none: --encryption-key)")

// hookRecord is a webhook as the bucket stores it.
type hookRecord struct {
	ID                string            `json:"id"`
	URL               string            `json:"url"`
	Types             []string          `json:"types"`
	Secret            string            `json:"secret"`
	Description       string            `json:"description,omitempty"`
	Enabled           bool              `json:"enabled"`
	DisabledReason    string            `json:"disabled_reason,omitempty"`
	PreviousSecret    string            `json:"previous_secret,omitempty"`
	PreviousExpires   time.Time         `json:"previous_expires,omitzero"`
	Headers           map[string]string `json:"headers,omitempty"`
	RateLimit         float64           `json:"rate_limit,omitempty"`
	Handshake         bool              `json:"handshake,omitempty"`
	AwaitingHandshake bool              `json:"awaiting_handshake,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

// sealer seals and opens secret values; a nil *sealer leaves them clear.
type sealer struct{ aead cipher.AEAD }

// newSealer returns a sealer for key (nil for an empty key).
func newSealer(key []byte) (*sealer, error) {
	if len(key) == 0 {
		return nil, nil
	}
	if len(key) != EncryptionKeySize {
		return nil, fmt.Errorf("natsjs: the encryption key is %d bytes, want %d", len(key), EncryptionKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(id, v string) string {
	if s == nil || v == "" {
		return v
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	out := s.aead.Seal(nonce, nonce, []byte(v), []byte(id))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out)
}

func (s *sealer) open(id, v string) (string, error) {
	if !strings.HasPrefix(v, sealedPrefix) {
		return v, nil // clear text: stored without a key, or before one was set
	}
	if s == nil {
		return "", ErrSealed
	}
	raw, err := base64.RawStdEncoding.DecodeString(v[len(sealedPrefix):])
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n {
		return "", fmt.Errorf("natsjs: webhook %s: a sealed value is malformed", id)
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(id))
	if err != nil {
		return "", ErrSealed
	}
	return string(plain), nil
}

// encode returns w's bucket value.
func (s *sealer) encode(w store.Webhook) []byte {
	r := hookRecord{
		ID: w.ID, URL: w.URL, Types: w.Types, Secret: s.seal(w.ID, w.Secret),
		Description: w.Description, Enabled: w.Enabled, DisabledReason: w.DisabledReason,
		PreviousSecret: s.seal(w.ID, w.PreviousSecret), PreviousExpires: w.PreviousExpires,
		RateLimit: w.RateLimit, Handshake: w.Handshake, AwaitingHandshake: w.AwaitingHandshake,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
	}
	if len(w.Headers) > 0 {
		r.Headers = make(map[string]string, len(w.Headers))
		for k, v := range w.Headers {
			r.Headers[k] = s.seal(w.ID, v)
		}
	}
	b, _ := json.Marshal(r) // strings, times, a map of strings: never fails
	return b
}

// decode reads a bucket value stored under key, in either format.
func (s *sealer) decode(key string, value []byte) (store.Webhook, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(value, &top); err != nil {
		return store.Webhook{}, fmt.Errorf("natsjs: webhook %s: %w", key, err)
	}
	if _, old := top["ID"]; old { // an earlier version's Go field names
		var w store.Webhook
		if err := json.Unmarshal(value, &w); err != nil {
			return store.Webhook{}, fmt.Errorf("natsjs: webhook %s: %w", key, err)
		}
		return w, nil
	}
	var r hookRecord
	if err := json.Unmarshal(value, &r); err != nil {
		return store.Webhook{}, fmt.Errorf("natsjs: webhook %s: %w", key, err)
	}
	w := store.Webhook{
		ID: r.ID, URL: r.URL, Types: r.Types, Description: r.Description, Enabled: r.Enabled,
		DisabledReason: r.DisabledReason, PreviousExpires: r.PreviousExpires, RateLimit: r.RateLimit,
		Handshake: r.Handshake, AwaitingHandshake: r.AwaitingHandshake, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	var err error
	if w.Secret, err = s.open(r.ID, r.Secret); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %s: %w", key, err)
	}
	if w.PreviousSecret, err = s.open(r.ID, r.PreviousSecret); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook %s: %w", key, err)
	}
	if len(r.Headers) > 0 {
		w.Headers = make(map[string]string, len(r.Headers))
		for k, v := range r.Headers {
			if w.Headers[k], err = s.open(r.ID, v); err != nil {
				return store.Webhook{}, fmt.Errorf("webhook %s: %w", key, err)
			}
		}
	}
	return w, nil
}
