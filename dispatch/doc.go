// Package dispatch delivers stored events to webhooks: the registry's
// webhooks become endpoints, each a cursor over the log (or, on a store
// that shares deliveries, a consumer of its queue); every attempt is
// signed, sent, and ends in one outcome that a settler carries out: done,
// retry after a delay, or given up. It also keeps each webhook's delivery
// log, live delivery tails and operational events.
//
// Imports point one way: api → dispatch → gateway, store. Nothing here
// knows HTTP routing, validation tags or problem documents; the package is
// an HTTP client only.
package dispatch
