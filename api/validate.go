package api

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/eventgate/eventgate/dispatch"
	"github.com/eventgate/eventgate/gateway"
	"github.com/eventgate/eventgate/gateway/signature"
	"github.com/eventgate/eventgate/store"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-playground/validator/v10"
)

// newValidator returns the validator with eventgate's tags:
//   - eventtype: a valid event type (store.ValidType)
//   - unreserved: not under gateway.ReservedPrefix
//   - pattern: a valid type pattern
//   - whsecret: a Standard Webhooks secret (signature.ParseSecret)
//   - ratelimit: 0 or dispatch.MinRateLimit..MaxRateLimit (dispatch.CheckRateLimit)
//
// and JSON field names in errors.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	must(v.RegisterValidation("eventtype", func(fl validator.FieldLevel) bool { return store.ValidType(fl.Field().String()) }))
	must(v.RegisterValidation("unreserved", func(fl validator.FieldLevel) bool { return !gateway.IsReserved(fl.Field().String()) }))
	must(v.RegisterValidation("pattern", func(fl validator.FieldLevel) bool {
		_, err := store.ParsePattern(fl.Field().String())
		return err == nil
	}))
	must(v.RegisterValidation("whsecret", func(fl validator.FieldLevel) bool {
		_, err := signature.ParseSecret(fl.Field().String())
		return err == nil
	}))
	must(v.RegisterValidation("ratelimit", func(fl validator.FieldLevel) bool {
		return dispatch.CheckRateLimit(fl.Field().Float()) == nil
	}))
	return v
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// fieldErrors maps a validator error to FieldErrors under prefix (e.g.
// "/3" for batch item 3).
func fieldErrors(prefix string, err error) []FieldError {
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return []FieldError{{Field: prefix, Message: err.Error()}}
	}
	out := make([]FieldError, 0, len(verrs))
	for _, fe := range verrs {
		// Namespace is "eventInput.type" or "webhookInput.types[2]".
		path := fe.Namespace()
		if _, rest, ok := strings.Cut(path, "."); ok {
			path = rest
		}
		path = strings.NewReplacer("[", "/", "]", "", ".", "/").Replace(path)
		out = append(out, FieldError{Field: prefix + "/" + path, Message: message(fe)})
	}
	return out
}

func message(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "max":
		if fe.Kind() == reflect.Slice || fe.Kind() == reflect.Map {
			return fmt.Sprintf("must have at most %s items", fe.Param())
		}
		return fmt.Sprintf("must be at most %s characters", fe.Param())
	case "min":
		return fmt.Sprintf("must be at least %s", fe.Param())
	case "eventtype":
		return "must be 1-128 characters of dot-separated segments of [A-Za-z0-9_-] (e.g. order.created)"
	case "unreserved":
		return fmt.Sprintf("the %q prefix is reserved for the gateway's own events", gateway.ReservedPrefix)
	case "pattern":
		return "must be a type pattern: dot-separated segments of [A-Za-z0-9_-], '*' for one segment, a final '>' for one or more"
	case "datetime":
		return "must be an RFC 3339 timestamp (e.g. 2026-11-26T10:00:00Z)"
	case "url", "http_url":
		return "must be an absolute http or https URL"
	case "whsecret":
		return "must be whsec_ followed by the standard base64 (with padding) of 24 to 64 random bytes"
	case "ratelimit":
		return fmt.Sprintf("must be 0 (no limit) or from %v to %d attempts per second", dispatch.MinRateLimit, dispatch.MaxRateLimit)
	case "oneof":
		return "must be one of: " + fe.Param()
	default:
		return fmt.Sprintf("failed the %q check", fe.Tag())
	}
}

// decodeFieldError turns a JSON decoding error on one value into a 422
// FieldError when it is about a field (unknown field, wrong JSON type);
// ok is false for syntax errors and the like, which are a 400.
func decodeFieldError(prefix string, err error) (FieldError, bool) {
	var se *jsonv2.SemanticError
	if !errors.As(err, &se) || se.GoType == nil {
		return FieldError{}, false
	}
	field := prefix + string(se.JSONPointer)
	switch {
	case errors.Is(se.Err, jsonv2.ErrUnknownName):
		return FieldError{Field: field, Message: "unknown field"}, true
	case se.JSONPointer == "":
		return FieldError{Field: field, Message: "must be a JSON object, not " + jsonKindName(se.JSONKind)}, true
	case se.Err != nil && se.JSONKind == '0':
		// The right kind, but the value does not fit: -1 or 1.5 for an
		// unsigned integer, 1e400 for a float.
		return FieldError{Field: field, Message: "must be " + numberRange(se.GoType)}, true
	default:
		return FieldError{Field: field, Message: fmt.Sprintf("must be a JSON %s, not %s", goKindName(se.GoType), jsonKindName(se.JSONKind))}, true
	}
}

// jsonKindName names the kind of a JSON value as people say it.
func jsonKindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	default:
		return "value"
	}
}

// numberRange says which numbers a numeric Go type takes.
func numberRange(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("a whole number from %d to %d", int64(math.MinInt64)>>(64-t.Bits()), int64(math.MaxInt64)>>(64-t.Bits()))
	default:
		return "a finite number within the range of a 64-bit float"
	}
}

// goKindName names the JSON kind a Go type takes.
func goKindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	default:
		return "number"
	}
}
