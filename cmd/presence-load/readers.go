package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/coder/websocket"
)

// inFrame holds the fields of server frames the generator looks at.
type inFrame struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Ref     string `json:"ref"`
	Device  string `json:"device"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func decodeFrame(data []byte) (inFrame, error) {
	var f inFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("bad frame %.100q: %w", data, err)
	}
	return f, nil
}

// readMessage reads the next data message into buf's storage. Unlike
// websocket.Conn.Read it allocates only when a message outgrows buf.
func readMessage(c *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := c.Reader(context.Background())
	if err != nil {
		return buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// widgetFrameStatus returns the status of a widget_status frame, and false
// for any other frame. It looks for the two fields it needs instead of
// decoding the frame: what the generator spends per frame, on the hub's
// machine, adds to the latency it measures. The hub writes JSON with no
// space after colons; a key cannot match inside a string value, whose
// quotes are escaped.
func widgetFrameStatus(data []byte) (string, bool) {
	if !bytes.Contains(data, []byte(`"type":"widget_status"`)) {
		return "", false
	}
	const key = `"status":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := data[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return "", false
	}
	switch string(rest[:end]) { // no allocation: the statuses are constants
	case "online":
		return "online", true
	case "busy":
		return "busy", true
	case "offline":
		return "offline", true
	}
	return "", false
}

// noteClosed records a socket the hub closed (or that failed) while the
// test still needed it.
func (l *loadTest) noteClosed(kind string, err error) {
	why := "error"
	if code := websocket.CloseStatus(err); code != -1 {
		why = strconv.Itoa(int(code))
	} else if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		why = "eof"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closedByHub[kind+" "+why]++
	if _, ok := l.firstClose[kind+" "+why]; !ok {
		l.firstClose[kind+" "+why] = err.Error()
	}
}

// closedSummary lists the sockets closed so far by kind and reason, with
// the first error of each.
func (l *loadTest) closedSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for k, n := range l.closedByHub {
		parts = append(parts, fmt.Sprintf("%d %s (first: %s)", n, k, l.firstClose[k]))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// noteDelivery counts one expected frame received at now.
func (l *loadTest) noteDelivery(now int64) {
	l.delivered.Add(1)
	for {
		last := l.lastDelivery.Load()
		if now <= last || l.lastDelivery.CompareAndSwap(last, now) {
			return
		}
	}
}

// statusFor is the status an agent's k-th change sets: busy, online, ...
func statusFor(k int) string {
	if k%2 == 0 {
		return "busy"
	}
	return "online"
}

// readWidget reads one widget socket until it closes.
func (l *loadTest) readWidget(w *widget, c *websocket.Conn, storm bool) {
	t := l.targets[w.target]
	nAgents := len(l.agents)
	if !storm {
		w.last = ""
	}
	var data []byte // reused: the generator reads as many frames as the hub writes
	for {
		var err error
		data, err = readMessage(c, data)
		if err != nil {
			if !w.closing.Load() && l.phase.Load() != phaseDone {
				l.noteClosed("widget", err)
			}
			if !storm && w.last == t.initial && l.phase.Load() == phaseInitial {
				l.readyWidgets.Add(-1)
			}
			return
		}
		now := l.now()
		status, ok := widgetFrameStatus(data)
		if !ok {
			w.unexpected++
			continue
		}
		switch l.phase.Load() {
		case phaseInitial:
			if status == t.initial && w.last != t.initial {
				l.readyWidgets.Add(1)
			} else if status != t.initial && w.last == t.initial {
				l.readyWidgets.Add(-1)
			}
			w.last = status
		case phaseChanges:
			if status == w.last {
				w.dups++
				continue
			}
			w.last = status
			k := w.got
			n := k*nAgents + w.agent
			if w.agent < 0 || n >= l.nChanges || status != statusFor(k) {
				w.unexpected++
				continue
			}
			sent := l.sendAt[n].Load()
			if sent == 0 {
				w.unexpected++
				continue
			}
			w.got++
			lat := now - sent
			w.maxLat = max(w.maxLat, lat)
			if (w.idx+k)%l.sampleEvery == 0 {
				w.lat = append(w.lat, int32(min(lat/1000, 1<<31-1)))
			}
			l.noteDelivery(now)
		case phaseStorm:
			if storm && w.snapAt == 0 {
				w.snapAt = max(1, now-l.stormStart.Load())
				w.snapStatus = status
				l.stormSnaps.Add(1)
			}
		}
	}
}

// readDevice reads one agent device socket until it closes.
func (l *loadTest) readDevice(d *device) {
	a := d.agent
	nAgents := len(l.agents)
	for {
		_, data, err := d.conn.Read(context.Background())
		if err != nil {
			if !d.closing.Load() && l.phase.Load() != phaseDone {
				l.noteClosed("device", err)
			}
			return
		}
		now := l.now()
		f, err := decodeFrame(data)
		if err != nil {
			d.unexpected++
			continue
		}
		switch f.Type {
		case "status":
			if d.idx == 0 {
				st := f.Status
				a.status.Store(&st)
			}
			n, err := strconv.Atoi(f.Ref)
			if err != nil || l.phase.Load() != phaseChanges {
				continue // "init" and other refs: not measured
			}
			if n < 0 || n >= l.nChanges || n%nAgents != a.idx || l.sendAt[n].Load() == 0 || f.Status != statusFor(n/nAgents) {
				d.unexpected++
				continue
			}
			k := n / nAgents
			if d.seen[k] {
				d.dups++
				continue
			}
			d.seen[k] = true
			d.got++
			if d.idx != senderDevice {
				d.lat = append(d.lat, int32(min((now-l.sendAt[n].Load())/1000, 1<<31-1)))
			}
			l.noteDelivery(now)
		case "error":
			if _, err := strconv.Atoi(f.Ref); err == nil {
				d.rejected++
			}
			d.lastError = f.Code + ": " + f.Message
		}
	}
}
