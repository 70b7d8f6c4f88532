package store_test

import (
	"testing"

	"github.com/eventgate/eventgate/store"
	"github.com/eventgate/eventgate/store/storetest"
)

func TestMemWebhooks(t *testing.T) {
	storetest.RunWebhooks(t, func(testing.TB) store.Webhooks { return &store.MemWebhooks{} })
}
