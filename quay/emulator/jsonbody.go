package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Request bodies the way Quay reads them: Flask 2.3's request.get_json()
// under Flask-RESTful, then endpoints/api validate_json_request with
// jsonschema 3.2.0.

// isJSONRequest is Werkzeug's Request.is_json: the mimetype is
// application/json or application/*+json.
func isJSONRequest(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return false
	}
	mt = strings.ToLower(mt)
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// Flask/Werkzeug's answers for unreadable JSON, serialised by Flask-RESTful's
// handle_error as {"message": description}. unverified: taken from Flask 2.3
// / Werkzeug 3.0 (Quay's pinned versions), not from Quay's own source.
const (
	unsupportedMediaTypeMessage = "Did not attempt to load JSON data because the request Content-Type was not 'application/json'."
	badRequestMessage           = "The browser (or proxy) sent a request that this server could not understand."
)

// decodeBody reads a JSON body keeping numbers as json.Number (so that
// error messages can repeat them as Python would).
func decodeBody(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

// silentJSON is request.get_json(silent=True): nil unless the request is
// JSON and parses.
func silentJSON(r *http.Request, raw []byte) any {
	if !isJSONRequest(r) {
		return nil
	}
	v, err := decodeBody(raw)
	if err != nil {
		return nil
	}
	return v
}

// readBody reads the whole request body.
func readBody(r *http.Request) []byte {
	if r.Body == nil {
		return nil
	}
	raw, _ := io.ReadAll(r.Body)
	return raw
}

// jsonRequest is validate_json_request(schema): a non-JSON Content-Type is
// 415, a malformed body 400 {"message"}, a JSON null "Missing JSON body",
// and a schema violation an InvalidRequest carrying jsonschema's message. It
// returns the decoded object.
func (e *Emulator) jsonRequest(w http.ResponseWriter, r *http.Request, s objectSchema) (map[string]any, bool) {
	v, ok := e.validJSONRequest(w, r, s.validate)
	if !ok {
		return nil, false
	}
	return v.(map[string]any), true
}

// validJSONRequest is validate_json_request for any schema, given as its
// validate function (jsonschema's best-match message, "" when valid).
func (e *Emulator) validJSONRequest(w http.ResponseWriter, r *http.Request, validate func(any) string) (any, bool) {
	raw := readBody(r)
	if !isJSONRequest(r) {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"message": unsupportedMediaTypeMessage})
		return nil, false
	}
	v, err := decodeBody(raw)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": badRequestMessage})
		return nil, false
	}
	if v == nil {
		e.invalidRequest(w, r, "Missing JSON body")
		return nil, false
	}
	if msg := validate(v); msg != "" {
		e.invalidRequest(w, r, msg)
		return nil, false
	}
	return v, true
}

// optionalJSONRequest is validate_json_request(schema, optional=True): a
// body that is absent, not JSON or unparsable is ignored (nil); a JSON one
// must match the schema.
func (e *Emulator) optionalJSONRequest(w http.ResponseWriter, r *http.Request, raw []byte, s objectSchema) (map[string]any, bool) {
	v := silentJSON(r, raw)
	if v == nil {
		return nil, true
	}
	if msg := s.validate(v); msg != "" {
		e.invalidRequest(w, r, msg)
		return nil, false
	}
	obj, _ := v.(map[string]any)
	return obj, true
}

// prop is one property of a JSON schema (the subset Quay's request schemas use).
type prop struct {
	name      string
	types     []string // string, number, integer, object, array, boolean, null
	enum      []any    // string or nil members
	minLength int      // 0: none
	maxLength int      // 0: none
	minimum   *float64
	object    *objectSchema // nested object schema
}

type objectSchema struct {
	required []string
	props    []prop
}

func minimum(v float64) *float64 { return &v }

// schemaError is one jsonschema error with the depth of its path.
type schemaError struct {
	depth int
	msg   string
}

// validate returns jsonschema's message for the error best_match would pick:
// the shallowest error, the first found among equals (validators run in the
// schema's own key order: type, required, then properties in order). Only
// the first line of jsonschema's str(error) is reproduced; Quay's
// error_message continues with the failing schema and instance.
func (s objectSchema) validate(v any) string {
	var errs []schemaError
	s.collect(v, 0, &errs)
	return bestMatch(errs)
}

// bestMatch is jsonschema's best_match: the shallowest error, the first
// found among equals; "" for none.
func bestMatch(errs []schemaError) string {
	best := schemaError{depth: math.MaxInt}
	for _, e := range errs {
		if e.depth < best.depth {
			best = e
		}
	}
	return best.msg
}

func (s objectSchema) collect(v any, depth int, errs *[]schemaError) {
	obj, ok := v.(map[string]any)
	if !ok {
		*errs = append(*errs, schemaError{depth, pyRepr(v) + " is not of type 'object'"})
		return
	}
	for _, name := range s.required {
		if _, present := obj[name]; !present {
			*errs = append(*errs, schemaError{depth, pyRepr(name) + " is a required property"})
		}
	}
	for _, p := range s.props {
		if val, present := obj[p.name]; present {
			p.collect(val, depth+1, errs)
		}
	}
}

func (p prop) collect(v any, depth int, errs *[]schemaError) {
	if len(p.types) > 0 && !matchesAnyType(v, p.types) {
		quoted := make([]string, len(p.types))
		for i, t := range p.types {
			quoted[i] = pyRepr(t)
		}
		*errs = append(*errs, schemaError{depth, pyRepr(v) + " is not of type " + strings.Join(quoted, ", ")})
	}
	if p.enum != nil {
		found := false
		for _, allowed := range p.enum {
			found = found || allowed == v
		}
		if !found {
			*errs = append(*errs, schemaError{depth, pyRepr(v) + " is not one of " + pyRepr(p.enum)})
		}
	}
	if s, ok := v.(string); ok {
		n := utf8.RuneCountInString(s)
		if p.minLength > 0 && n < p.minLength {
			*errs = append(*errs, schemaError{depth, pyRepr(s) + " is too short"})
		}
		if p.maxLength > 0 && n > p.maxLength {
			*errs = append(*errs, schemaError{depth, pyRepr(s) + " is too long"})
		}
	}
	if n, ok := v.(json.Number); ok && p.minimum != nil {
		if f, err := n.Float64(); err == nil && f < *p.minimum {
			*errs = append(*errs, schemaError{depth, pyRepr(v) + " is less than the minimum of " + pyRepr(json.Number(strconv.FormatFloat(*p.minimum, 'f', -1, 64)))})
		}
	}
	if p.object != nil {
		if _, ok := v.(map[string]any); ok {
			p.object.collect(v, depth, errs)
		}
	}
}

func matchesAnyType(v any, types []string) bool {
	for _, t := range types {
		switch t {
		case "string":
			if _, ok := v.(string); ok {
				return true
			}
		case "number":
			if _, ok := v.(json.Number); ok {
				return true
			}
		case "integer":
			if n, ok := v.(json.Number); ok {
				if f, err := n.Float64(); err == nil && f == math.Trunc(f) {
					return true
				}
			}
		case "object":
			if _, ok := v.(map[string]any); ok {
				return true
			}
		case "array":
			if _, ok := v.([]any); ok {
				return true
			}
		case "boolean":
			if _, ok := v.(bool); ok {
				return true
			}
		case "null":
			if v == nil {
				return true
			}
		}
	}
	return false
}

// pyRepr renders a decoded JSON value the way Python's repr() shows what
// json.loads made of it (str, int, float, True, None, list, dict). Dict keys
// come out sorted; Python keeps the document's order.
func pyRepr(v any) string {
	switch t := v.(type) {
	case nil:
		return "None"
	case bool:
		if t {
			return "True"
		}
		return "False"
	case string:
		return pyStr(t)
	case json.Number:
		s := string(t)
		if !strings.ContainsAny(s, ".eE") {
			return s
		}
		f, err := t.Float64()
		if err != nil {
			return s
		}
		return pyFloat(f)
	case []any:
		parts := make([]string, len(t))
		for i, x := range t {
			parts[i] = pyRepr(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyStr(k) + ": " + pyRepr(t[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Python writes at least two exponent digits, as Go does.
		return s
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func pyStr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, "\"") {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(quote):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r) && r != ' ':
			if r <= 0xff {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else if r <= 0xffff {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// pyTruthy is Python's truth value of a decoded JSON value.
func pyTruthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case string:
		return t != ""
	case json.Number:
		f, err := t.Float64()
		return err != nil || f != 0
	case []any:
		return len(t) > 0
	case map[string]any:
		return len(t) > 0
	}
	return true
}
