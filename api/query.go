package api

import (
	"net/url"
	"slices"
	"sort"
)

// Query parameters each read endpoint takes. A parameter outside its list
// is answered 400 naming it, as an unknown member of a request body is:
// a misspelt filter must not silently return everything.
var (
	replayParams = []string{"after", "limit", "type", "types"}
	streamParams = []string{"after", "epoch", "type", "types", "access_token"}
)

// unknownParams returns a FieldError for each parameter of q not in known,
// in name order.
func unknownParams(q url.Values, known []string) []FieldError {
	var errs []FieldError
	for name := range q {
		if !slices.Contains(known, name) {
			errs = append(errs, FieldError{Field: name, Message: "is not a parameter of this endpoint (it takes " + listOf(known) + ")"})
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return errs
}

// typePatterns reads a type filter from either spelling, `type` or
// `types`, each repeated or comma-separated.
func typePatterns(q url.Values) []string {
	return splitList(append(slices.Clone(q["type"]), q["types"]...))
}

func listOf(names []string) string {
	out := ""
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			out += " and "
		default:
			out += ", "
		}
		out += n
	}
	return out
}
