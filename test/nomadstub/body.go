package nomadstub

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// maxBodyBytes bounds what the stand-in reads from a JSON body.
const maxBodyBytes = 1 << 20

// requestBody is a body as FastAPI hands it to validation: absent, decoded JSON, or raw text when
// the Content-Type is not JSON.
type requestBody struct {
	present bool
	value   any
}

// readJSONBody reproduces FastAPI's body step, which runs before any dependency: an empty body is
// "absent"; with a JSON (or missing) Content-Type the bytes are decoded and a decode error is an
// immediate 422 json_invalid (so it beats 401/403, unlike every other body problem); any other
// Content-Type leaves the raw text for model validation to reject later.
func readJSONBody(r *http.Request) (requestBody, []validationError) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil || len(raw) == 0 {
		return requestBody{}, nil
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if !isJSONMediaType(mt) {
			return requestBody{present: true, value: string(raw)}, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err = dec.Decode(&v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errExtraData
		}
	}
	if err != nil {
		pos := int(dec.InputOffset())
		var se *json.SyntaxError
		if errors.As(err, &se) {
			pos = int(se.Offset)
		}
		return requestBody{}, []validationError{{
			Type: "json_invalid", Loc: loc("body", pos), Msg: "JSON decode error",
			Input: map[string]any{}, Ctx: map[string]any{"error": pyJSONError(err)},
		}}
	}
	return requestBody{present: v != nil, value: v}, nil
}

func isJSONMediaType(mt string) bool {
	mt = strings.ToLower(mt)
	if !strings.HasPrefix(mt, "application/") {
		return false
	}
	sub := strings.TrimPrefix(mt, "application/")
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// errExtraData is trailing content after the first JSON value, which Python's json.loads rejects.
var errExtraData = errors.New("extra data")

// pyJSONError approximates the message of Python's JSONDecodeError (only the 422's type and msg
// are part of the contract, not this text).
func pyJSONError(err error) string {
	if errors.Is(err, errExtraData) {
		return "Extra data"
	}
	return "Expecting value"
}

// createRequest is PATCreateRequest after validation. days nil = never expires.
type createRequest struct {
	name        string
	description *string
	scopes      []string
	days        *big.Int
}

// defaultExpiresInDays is PATCreateRequest's default when the key is omitted.
const defaultExpiresInDays = 30

const msgModelAttributes = "Input should be a valid dictionary or object to extract fields from"

// decodeCreateRequest validates the body like pydantic does PATCreateRequest, in lax mode: it
// collects every error (field order: metadata.name, metadata.scopes, metadata.description,
// expires_in_days), ignores unknown keys, and accepts "30" or 30.0 for an int.
func decodeCreateRequest(b requestBody) (createRequest, []validationError) {
	var req createRequest
	if !b.present {
		return req, []validationError{missingField(loc("body"), nil)}
	}
	body, ok := b.value.(map[string]any)
	if !ok {
		return req, []validationError{{Type: "model_attributes_type", Loc: loc("body"), Msg: msgModelAttributes, Input: b.value}}
	}
	var errs []validationError
	meta, ok := body["metadata"]
	switch m, isMap := meta.(map[string]any); {
	case !ok:
		errs = append(errs, missingField(loc("body", "metadata"), body))
	case !isMap:
		errs = append(errs, validationError{Type: "model_attributes_type", Loc: loc("body", "metadata"), Msg: msgModelAttributes, Input: meta})
	default:
		errs = append(errs, decodeMetadata(m, &req)...)
	}

	req.days = big.NewInt(defaultExpiresInDays)
	if v, ok := body["expires_in_days"]; ok {
		days, err := laxInt(v, loc("body", "expires_in_days"))
		if err != nil {
			errs = append(errs, *err)
		}
		req.days = days // nil for JSON null: never expires
	}
	return req, errs
}

func decodeMetadata(m map[string]any, req *createRequest) []validationError {
	var errs []validationError
	switch name, ok := m["name"]; {
	case !ok:
		errs = append(errs, missingField(loc("body", "metadata", "name"), m))
	default:
		if s, isStr := name.(string); isStr {
			req.name = s
		} else {
			errs = append(errs, stringTypeError(loc("body", "metadata", "name"), name))
		}
	}
	switch scopes, ok := m["scopes"]; {
	case !ok:
		errs = append(errs, missingField(loc("body", "metadata", "scopes"), m))
	default:
		list, isList := scopes.([]any)
		if !isList {
			errs = append(errs, validationError{Type: "list_type", Loc: loc("body", "metadata", "scopes"), Msg: "Input should be a valid list", Input: scopes})
			break
		}
		req.scopes = make([]string, 0, len(list))
		for i, item := range list {
			if s, isStr := item.(string); isStr {
				req.scopes = append(req.scopes, s)
			} else {
				errs = append(errs, stringTypeError(loc("body", "metadata", "scopes", i), item))
			}
		}
	}
	if d, ok := m["description"]; ok && d != nil {
		if s, isStr := d.(string); isStr {
			req.description = &s
		} else {
			errs = append(errs, stringTypeError(loc("body", "metadata", "description"), d))
		}
	}
	return errs
}

func stringTypeError(l []any, input any) validationError {
	return validationError{Type: "string_type", Loc: l, Msg: "Input should be a valid string", Input: input}
}

// laxInt is pydantic's lax `int | None`: null → nil, integers and integral floats, integer
// strings, and booleans (as 0/1) are accepted; everything else is one of pydantic's int errors.
func laxInt(v any, l []any) (*big.Int, *validationError) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		if x {
			return big.NewInt(1), nil
		}
		return big.NewInt(0), nil
	case json.Number:
		if n, ok := new(big.Int).SetString(x.String(), 10); ok {
			return n, nil
		}
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, &validationError{Type: "finite_number", Loc: l, Msg: "Input should be a finite number", Input: x}
		}
		if f != math.Trunc(f) {
			return nil, &validationError{Type: "int_from_float", Loc: l, Msg: "Input should be a valid integer, got a number with a fractional part", Input: x}
		}
		n, _ := big.NewFloat(f).Int(nil)
		return n, nil
	case string:
		if n, ok := new(big.Int).SetString(strings.TrimSpace(x), 10); ok {
			return n, nil
		}
		return nil, &validationError{Type: "int_parsing", Loc: l, Msg: "Input should be a valid integer, unable to parse string as an integer", Input: x}
	default:
		return nil, &validationError{Type: "int_type", Loc: l, Msg: "Input should be a valid integer", Input: x}
	}
}
