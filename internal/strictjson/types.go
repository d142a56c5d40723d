package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// TypeError is a JSON value of another type than the field it fills
// wants, in JSON's words rather than Go's: `events: want an array of
// strings, got a string`.
type TypeError struct {
	// Path is the value's place in the document, as the checker names it
	// ("weekly.monday[0].from"); "" is the whole document.
	Path string
	// Want is what the field takes ("an array of strings"), Got what the
	// document has there ("a string", or the number itself for a number
	// that does not fit: "1.5").
	Want, Got string
}

func (e *TypeError) Error() string {
	if e.Path == "" {
		return "want " + e.Want + ", got " + e.Got
	}
	return e.Path + ": want " + e.Want + ", got " + e.Got
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// jsonType says in JSON's words what a value decoded into t must be.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array of " + plural(t.Elem())
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another JSON value"
}

// plural names the values of an array of t.
func plural(t reflect.Type) string {
	one := jsonType(t)
	switch one {
	case "a string", "a base64 string":
		return "strings"
	case "true or false":
		return "booleans"
	case "an integer":
		return "integers"
	case "an integer, 0 or more":
		return "integers, 0 or more"
	case "a number":
		return "numbers"
	case "an object":
		return "objects"
	}
	if strings.HasPrefix(one, "an array") {
		return "arrays"
	}
	return "values"
}

// gotType turns json.UnmarshalTypeError's Value ("string", "number 1.5")
// into words.
func gotType(value string) string {
	if n, ok := strings.CutPrefix(value, "number "); ok {
		return n
	}
	switch value {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "true or false"
	case "array":
		return "an array"
	case "object":
		return "an object"
	}
	return value
}

// pathAt returns the path of the value of data at offset, where
// encoding/json reports a type error: the end of a scalar, or just after
// the '[' or '{' that opens an array or object. It names map keys and
// array indexes, which json.UnmarshalTypeError's Field leaves out.
func pathAt(data []byte, offset int64) string {
	type level struct {
		array   bool
		index   int    // arrays: the index of the next value
		key     string // objects: the key of the next value
		haveKey bool   // objects: key was read, its value not yet
	}
	var stack []level
	path := func() string {
		var b strings.Builder
		for _, l := range stack {
			if l.array {
				b.WriteString("[" + strconv.Itoa(l.index) + "]")
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(l.key)
		}
		return b.String()
	}
	// next moves the innermost container past the value just read.
	next := func() {
		if len(stack) == 0 {
			return
		}
		if l := &stack[len(stack)-1]; l.array {
			l.index++
		} else {
			l.haveKey = false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if n := len(stack); n > 0 && !stack[n-1].array && !stack[n-1].haveKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				next()
				continue
			}
			key, ok := tok.(string)
			if !ok {
				return "" // not a well-formed object: no path to give
			}
			stack[n-1].key, stack[n-1].haveKey = key, true
			continue
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			if len(stack) == 0 {
				return ""
			}
			stack = stack[:len(stack)-1]
			next()
			continue
		}
		// tok starts a value.
		if dec.InputOffset() >= offset {
			return path()
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, level{array: d == '['})
			continue
		}
		next()
	}
}
