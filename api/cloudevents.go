package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/eventgate/eventgate/store"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// cloudEventInput holds the CloudEvents 1.0 context attributes eventgate
// maps onto an event; every other attribute is an extension.
type cloudEventInput struct {
	SpecVersion     string          `json:"specversion" validate:"required,eq=1.0"`
	ID              string          `json:"id" validate:"required,max=128"`
	Source          string          `json:"source" validate:"required,max=1024"`
	Type            string          `json:"type" validate:"required,max=128,eventtype,unreserved"`
	Subject         string          `json:"subject" validate:"max=1024"`
	Time            string          `json:"time" validate:"omitempty,datetime=2006-01-02T15:04:05Z07:00"`
	DataContentType string          `json:"datacontenttype" validate:"max=256"`
	DataSchema      string          `json:"dataschema" validate:"omitempty,uri"`
	Data            json.RawMessage `json:"data"`
	DataBase64      string          `json:"data_base64" validate:"omitempty,base64"`
}

// ceAttributes are the names that are not extensions.
var ceAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "subject": true,
	"time": true, "datacontenttype": true, "dataschema": true, "data": true, "data_base64": true,
}

// extensionName is the CloudEvents rule for attribute names.
var extensionName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// event validates in and maps it; exts are the extension attributes.
func (s *Server) cloudEvent(prefix string, in *cloudEventInput, exts map[string]any) (store.Event, []FieldError) {
	var errs []FieldError
	if err := s.validate.Struct(in); err != nil {
		errs = fieldErrors(prefix, err)
	}
	if in.Data != nil && in.DataBase64 != "" {
		errs = append(errs, FieldError{Field: prefix + "/data_base64", Message: "data and data_base64 are mutually exclusive"})
	}
	for name := range exts {
		if name == "seq" {
			errs = append(errs, FieldError{Field: prefix + "/seq", Message: "the seq extension is reserved: the gateway assigns seq (and sends it as an extension on cloudevents.json streams)"})
			continue
		}
		if !extensionName.MatchString(name) {
			errs = append(errs, FieldError{Field: prefix + "/" + name, Message: "a CloudEvents extension name must be 1-20 lower-case letters or digits"})
		}
	}
	if errs != nil {
		return store.Event{}, errs
	}
	if in.DataSchema != "" {
		if exts == nil {
			exts = map[string]any{}
		}
		exts["dataschema"] = in.DataSchema
	}
	if len(exts) == 0 {
		exts = nil
	}
	e := store.Event{
		ID: in.ID, Type: in.Type, Source: in.Source, Subject: in.Subject, Time: parseTime(in.Time),
		DataContentType: in.DataContentType, Data: in.Data, DataBase64: in.DataBase64, Extensions: exts,
	}
	if e.Data == nil && e.DataBase64 == "" {
		e.Data = json.RawMessage("null")
	}
	return e, nil
}

// decodeCloudEvents decodes structured mode: one CloudEvent object, or an
// array of them in batch mode.
func (s *Server) decodeCloudEvents(body []byte, batch bool) ([]store.Event, *Problem) {
	var raws []jsontext.Value
	if batch {
		if err := jsonv2.Unmarshal(body, &raws); err != nil {
			return nil, badJSON(err.Error())
		}
		if p := s.checkBatchSize(len(raws)); p != nil {
			return nil, p
		}
	} else {
		raws = []jsontext.Value{body}
	}
	events := make([]store.Event, len(raws))
	var errs []FieldError
	for i, raw := range raws {
		prefix := ""
		if batch {
			prefix = "/" + strconv.Itoa(i)
		}
		var attrs map[string]jsontext.Value
		if err := jsonv2.Unmarshal(raw, &attrs); err != nil {
			if fe, ok := decodeFieldError(prefix, err); ok {
				errs = append(errs, fe)
				continue
			}
			return nil, badJSON(err.Error())
		}
		var in cloudEventInput
		if err := jsonv2.Unmarshal(raw, &in); err != nil {
			if fe, ok := decodeFieldError(prefix, err); ok {
				errs = append(errs, fe)
				continue
			}
			return nil, badJSON(err.Error())
		}
		var exts map[string]any
		for name, v := range attrs {
			if ceAttributes[name] {
				continue
			}
			var val any
			if err := jsonv2.Unmarshal(v, &val); err != nil {
				return nil, badJSON(err.Error())
			}
			switch val.(type) {
			case string, float64, bool:
			default:
				errs = append(errs, FieldError{Field: prefix + "/" + name, Message: "a CloudEvents extension must be a string, number or boolean"})
				continue
			}
			if exts == nil {
				exts = map[string]any{}
			}
			exts[name] = json.RawMessage(v)
		}
		e, ferrs := s.cloudEvent(prefix, &in, exts)
		errs = append(errs, ferrs...)
		events[i] = e
	}
	if errs != nil {
		detail := "the CloudEvent is invalid"
		if batch {
			detail = fmt.Sprintf("the batch was not stored: %d of %d events are invalid", countItems(errs), len(raws))
		}
		return nil, invalid(detail, errs)
	}
	return events, nil
}

// binaryCloudEvent maps CloudEvents HTTP binary mode: ce-* headers are the
// attributes (read liberally: decodeCEHeader), the body is the data. JSON bodies are kept
// as data; any other body as data_base64 with its datacontenttype.
func (s *Server) binaryCloudEvent(h http.Header, mediaType string, body []byte) ([]store.Event, *Problem) {
	attrs := map[string]string{}
	var errs []FieldError
	for name, vals := range h {
		attr, ok := strings.CutPrefix(strings.ToLower(name), "ce-")
		if !ok || len(vals) == 0 {
			continue
		}
		attrs[attr] = decodeCEHeader(vals[0])
	}
	in := cloudEventInput{
		SpecVersion: attrs["specversion"], ID: attrs["id"], Source: attrs["source"], Type: attrs["type"],
		Subject: attrs["subject"], Time: attrs["time"], DataSchema: attrs["dataschema"],
	}
	var exts map[string]any
	for name, v := range attrs {
		if ceAttributes[name] {
			continue
		}
		if exts == nil {
			exts = map[string]any{}
		}
		exts[name] = v
	}
	if len(body) > 0 {
		if isJSONMediaType(mediaType) {
			if !jsontext.Value(body).IsValid() {
				return nil, badJSON("a binary-mode CloudEvent with a JSON Content-Type needs a JSON body")
			}
			in.Data = json.RawMessage(bytes.Clone(body))
		} else {
			in.DataBase64 = base64.StdEncoding.EncodeToString(body)
		}
	}
	if ct := h.Get("Content-Type"); ct != "" {
		in.DataContentType = normaliseContentType(ct)
	}
	e, ferrs := s.cloudEvent("", &in, exts)
	errs = append(errs, ferrs...)
	if errs != nil {
		return nil, invalid("the CloudEvent is invalid", errs)
	}
	return []store.Event{e}, nil
}

func isJSONMediaType(mt string) bool {
	return mt == ctJSON || strings.HasSuffix(mt, "+json")
}

func normaliseContentType(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mime.FormatMediaType(mt, params)
}
