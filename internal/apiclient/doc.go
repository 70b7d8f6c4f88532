// Package apiclient is a Go client for eventgate generated from
// openapi.yaml by oapi-codegen, at the version pinned by go.mod's tool
// directive. It exists to prove that openapi.yaml works with a code
// generator: its tests regenerate it and fail when client.gen.go is stale,
// and drive a real gateway with its typed calls only.
//
// It is internal: applications should use the hand-written
// github.com/eventgate/eventgate/client, or generate their own client from
// openapi.yaml (see README, "Generating a client").
//
// The body of POST /v1/events is the union PublishRequest (one EventInput,
// or a batch): fill it with FromEventInput or FromEventInputBatch.
package apiclient

//go:generate go tool oapi-codegen -config cfg.yaml ../../openapi.yaml
