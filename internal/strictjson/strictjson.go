// Package strictjson decodes JSON request bodies strictly: besides the
// unknown fields encoding/json can refuse, it refuses the keys that
// encoding/json would quietly accept or drop.
//
// encoding/json matches object keys to struct fields ignoring case, and
// keeps the last of two equal keys, so {"allowed_origins":["https://a.example"],
// "ALLOWED_ORIGINS":[]} decodes as an empty list: a body that reads one way
// to a person (or to a proxy or a validator in front) and another way to the
// hub. Decode refuses such bodies, naming the key.
//
// It imports no network package, so that package presence (pure rules) can
// use it as well as package transport. It runs no goroutines.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// ErrTrailingData is returned when something follows the JSON value.
var ErrTrailingData = errors.New("unexpected data after the JSON value")

// Decode decodes data into v, which must be a non-nil pointer, as
// encoding/json does with DisallowUnknownFields, and also returns an error
// for:
//
//   - a key that matches a field of the struct it is decoded into only when
//     case is ignored: `json: field "ALLOWED_ORIGINS" must be spelled "allowed_origins"`;
//   - a key that appears twice in one object: `json: duplicate key "timezone"`;
//   - anything but white space after the value (ErrTrailingData).
//
// Its errors speak JSON, not Go: a value of the wrong type is a *TypeError
// naming the value's path (`events: want an array of strings, got a
// string`), and an unknown field is named with the path of its object
// (`json: unknown field "until" in weekly.monday[0]`).
//
// Keys are checked against the Go type wherever it is known: struct
// fields, map values, slice and array elements, through pointers. Values
// decoded by their own UnmarshalJSON (json.RawMessage among them) or into
// an interface are checked for duplicate keys only. On error v may have
// been partly written.
func Decode(data []byte, v any) error { return decode(data, v, false) }

// DecodeMessage is Decode for messages whose senders may be newer than the
// receiver (the wire protocol's client messages): a key that is no field at
// all is ignored, as encoding/json does, but a known key spelled another
// way and a duplicate key are still refused, since those would read one way
// to the sender and another to the hub.
func DecodeMessage(data []byte, v any) error { return decode(data, v, true) }

func decode(data []byte, v any, allowUnknown bool) error {
	// Unknown fields are left to the checker below, which names the
	// object they are in; encoding/json's DisallowUnknownFields does not.
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Type != nil {
			return &TypeError{Path: pathAt(data, typeErr.Offset), Want: jsonType(typeErr.Type), Got: gotType(typeErr.Value)}
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailingData
	}
	// encoding/json accepted the value, so it is well-formed JSON that fits
	// v's type: a second pass over its tokens can look at the keys alone.
	keys := json.NewDecoder(bytes.NewReader(data))
	keys.UseNumber() // numbers are skipped; no need to parse them as floats
	return checker{allowUnknown: allowUnknown}.value(keys, reflect.TypeOf(v), "")
}

// checker walks a value's keys; with allowUnknown, keys that match no field
// even ignoring case pass.
type checker struct{ allowUnknown bool }

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// value reads the next value from dec and checks its keys against t, a
// value decoded at path (for error messages: "" at the top, then
// "weekly.monday[0]"). A nil t means that only duplicates are checked.
func (c checker) value(dec *json.Decoder, t reflect.Type, path string) error {
	t = concrete(t)
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("failed to read JSON: %w", err)
	}
	switch tok {
	case json.Delim('{'):
		return c.object(dec, t, path)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := c.value(dec, elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ]
		return err
	}
	return nil
}

// object checks the keys of an object whose '{' was just read, and its
// values, up to and including its '}'.
func (c checker) object(dec *json.Decoder, t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t != nil && t.Kind() == reflect.Struct:
		fields = structFields(t)
	case t != nil && t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("failed to read JSON: %w", err)
		}
		key := tok.(string) // a key is always a string token in a well-formed object
		if seen[key] {
			return fmt.Errorf("json: duplicate key %q%s", key, in(path))
		}
		seen[key] = true
		sub := elem
		if fields != nil {
			var ok bool
			if sub, ok = fields[key]; !ok {
				if err := misspelled(key, fields, path); err != nil {
					return err
				}
				if !c.allowUnknown {
					return fmt.Errorf("json: unknown field %q%s", key, in(path))
				}
			}
		}
		if err := c.value(dec, sub, join(path, key)); err != nil {
			return err
		}
	}
	_, err := dec.Token() // }
	return err
}

// misspelled is the error for key, which is not exactly a field name in
// fields, when it is one of them spelled another way; nil otherwise.
func misspelled(key string, fields map[string]reflect.Type, path string) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Errorf("json: field %q%s must be spelled %q", key, in(path), name)
		}
	}
	return nil
}

// concrete returns the type that decoding into t fills: pointers are
// followed, and nil stands for "not known" (an interface, or a type that
// decodes itself).
func concrete(t reflect.Type) reflect.Type {
	for t != nil {
		if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
			return nil
		}
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Interface:
			return nil
		default:
			return t
		}
	}
	return nil
}

// structFields maps the JSON names of t's fields, as encoding/json names
// them (the tag's name, else the Go name; "-" and unexported fields left
// out; untagged embedded structs' fields promoted), to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if et := concrete(f.Type); et != nil && et.Kind() == reflect.Struct {
				for n, ft := range structFields(et) {
					if _, shadowed := fields[n]; !shadowed {
						fields[n] = ft
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// in names path in an error message, if there is one.
func in(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}
