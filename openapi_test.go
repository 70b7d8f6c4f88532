package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPI checks that openapi.yaml is a valid OpenAPI 3.1 document whose
// examples match their schemas, and that it still covers the whole contract.
//
// kin-openapi turns on JSON Schema 2020-12 validation by itself when the
// document says "openapi: 3.1.x", so Validate needs no extra option for that.
// It also validates examples by default.
func TestOpenAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("openapi.yaml")
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError()); err != nil {
		t.Fatalf("validate openapi.yaml: %v", err)
	}

	// Validate skips the JSON Schema "examples" keyword; check those too.
	seen := map[*openapi3.Schema]bool{}
	var checkExamples func(where string, ref *openapi3.SchemaRef)
	checkExamples = func(where string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		for i, ex := range s.Examples {
			if err := s.VisitJSON(ex, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("%s: examples[%d] does not match its schema: %v", where, i, err)
			}
		}
		for name, p := range s.Properties {
			checkExamples(where+".properties."+name, p)
		}
		checkExamples(where+".items", s.Items)
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for i, sub := range group {
				checkExamples(fmt.Sprintf("%s[%d]", where, i), sub)
			}
		}
	}
	for name, ref := range doc.Components.Schemas {
		checkExamples("components.schemas."+name, ref)
	}

	checkGeneratorReady(t, doc)

	// The contract's surface: every operation must stay documented.
	wantOps := map[string][]string{
		"/v1/events":                                       {"GET", "POST"},
		"/v1/events/{seq}":                                 {"GET"},
		"/v1/stream":                                       {"GET"},
		"/v1/webhooks":                                     {"GET", "POST"},
		"/v1/webhooks/{id}":                                {"DELETE", "GET", "PATCH"},
		"/v1/webhooks/{id}/rotate-secret":                  {"POST"},
		"/v1/webhooks/{id}/replay":                         {"POST"},
		"/v1/webhooks/{id}/deliveries":                     {"GET"},
		"/v1/webhooks/{id}/deliveries/{delivery_id}":       {"GET"},
		"/v1/webhooks/{id}/deliveries/{delivery_id}/retry": {"POST"},
		"/v1/webhooks/{id}/deliveries/stream":              {"GET"},
		"/v1/tokens":                                       {"POST"},
		"/healthz":                                         {"GET"},
		"/readyz":                                          {"GET"},
		"/metrics":                                         {"GET"},
		"/":                                                {"GET"},
	}
	for path, methods := range wantOps {
		item := doc.Paths.Value(path)
		if item == nil {
			t.Errorf("path %s is missing", path)
			continue
		}
		for _, m := range methods {
			if item.GetOperation(m) == nil {
				t.Errorf("%s %s is missing", m, path)
			}
		}
	}
	if got, want := doc.Paths.Len(), len(wantOps); got != want {
		t.Errorf("openapi.yaml has %d paths, want %d (update wantOps when the contract grows)", got, want)
	}

	for _, name := range []string{"event-delivery", "webhook-handshake"} {
		if doc.Webhooks[name] == nil {
			t.Errorf("webhooks.%s is missing", name)
		}
	}

	// Every /v1 operation needs the bearer key; ops endpoints need none.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			sec := doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			v1 := len(path) >= 4 && path[:4] == "/v1/"
			hasBearer := slices.ContainsFunc(sec, func(r openapi3.SecurityRequirement) bool {
				_, ok := r["bearerAuth"]
				return ok
			})
			if v1 && !hasBearer {
				t.Errorf("%s %s: no bearerAuth", method, path)
			}
			if !v1 && len(sec) != 0 {
				t.Errorf("%s %s: want no security, got %v", method, path, sec)
			}
		}
	}
}

// checkGeneratorReady checks the shapes that keep openapi.yaml usable by
// code generators (internal/apiclient's tests run one), and that the
// constraints written in those shapes still say what the server does.
func checkGeneratorReady(t *testing.T, doc *openapi3.T) {
	t.Helper()
	// Type arrays only for nullability ([X, 'null']): oapi-codegen stops at
	// any other, so several types are an anyOf.
	seen := map[*openapi3.Schema]bool{}
	var walk func(where string, ref *openapi3.SchemaRef)
	walk = func(where string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if types := s.Type.Slice(); len(types) > 2 || len(types) == 2 && !slices.Contains(types, openapi3.TypeNull) {
			t.Errorf("%s: type %v; use anyOf for several types", where, types)
		}
		for name, p := range s.Properties {
			walk(where+".properties."+name, p)
		}
		walk(where+".items", s.Items)
		if s.AdditionalProperties.Schema != nil {
			walk(where+".additionalProperties", s.AdditionalProperties.Schema)
		}
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for i, sub := range group {
				walk(fmt.Sprintf("%s[%d]", where, i), sub)
			}
		}
	}
	for name, ref := range doc.Components.Schemas {
		walk("components.schemas."+name, ref)
	}

	// A request body that is a union must be a named schema: given an
	// inline oneOf, oapi-codegen declares the body as a new type that
	// loses the union's MarshalJSON, and its typed call sends {}.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			for ct, mt := range op.RequestBody.Value.Content {
				if s := mt.Schema; s != nil && s.Ref == "" && s.Value != nil && len(s.Value.OneOf)+len(s.Value.AnyOf) > 0 {
					t.Errorf("%s %s %s: the body is an inline union; make it a named schema", method, path, ct)
				}
			}
		}
	}

	// Values each schema must take or refuse, as the server does.
	cases := []struct {
		schema string
		value  string
		ok     bool
	}{
		{"Event", `{"seq":1,"id":"a","type":"t","source":"/","time":"2026-11-26T10:00:00Z","data":null}`, true},
		{"Event", `{"seq":1,"id":"a","type":"t","source":"/","time":"2026-11-26T10:00:00Z","data_base64":"AA=="}`, true},
		{"Event", `{"seq":1,"id":"a","type":"t","source":"/","time":"2026-11-26T10:00:00Z","data":1,"data_base64":"AA=="}`, false},
		{"Event", `{"seq":1,"id":"a","type":"t","source":"/","time":"2026-11-26T10:00:00Z"}`, false},
		{"Event", `{"seq":1,"id":"a","type":"t","source":"/","time":"2026-11-26T10:00:00Z","data":1,"extensions":{"priority":1.5,"sampled":true,"region":"eu"}}`, true},
		{"Event", `{"seq":1,"id":"a","type":"t","source":"/","time":"2026-11-26T10:00:00Z","data":1,"extensions":{"nested":{"a":1}}}`, false},
		{"CloudEvent", `{"specversion":"1.0","id":"1","source":"/s","type":"t","priority":1.5,"sampled":false,"region":"eu"}`, true},
		{"CloudEvent", `{"specversion":"1.0","id":"1","source":"/s","type":"t","tags":["a"]}`, false},
		{"CloudEvent", `{"specversion":"1.0","id":"1","source":"/s","type":"t","abcdefghijklmnopqrstu":"21 characters"}`, false},
		// (data: {}, not null: kin-openapi checks schemas without 3.1
		// keywords, such as this one, as 3.0, where an empty schema is not
		// nullable. The server takes null.)
		{"PublishRequest", `{"type":"t","data":{}}`, true},
		{"PublishRequest", `[{"type":"t","data":{}},{"type":"u","data":1}]`, true},
		{"PublishRequest", `{"events":[{"type":"t","data":{}}]}`, false},
		{"PublishRequest", `{"type":"t","data":{},"extra":1}`, false},
	}
	for _, c := range cases {
		var v any
		if err := json.Unmarshal([]byte(c.value), &v); err != nil {
			t.Fatal(err)
		}
		err := doc.Components.Schemas[c.schema].Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
		if (err == nil) != c.ok {
			t.Errorf("%s takes %s: %v, want %v (%v)", c.schema, c.value, err == nil, c.ok, err)
		}
	}
}
