package hub

import "encoding/json"

// encode marshals a frame of package protocol once, for every subscriber
// it goes to; those frame types cannot fail to encode.
func encode(v any) *Frame {
	b, err := json.Marshal(v)
	if err != nil {
		panic("hub: failed to encode frame: " + err.Error())
	}
	return NewFrame(b)
}
