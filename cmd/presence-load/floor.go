package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/presencehub/presencehub/transport"
)

// The floor: `presence-load floor` serves the part of the wire protocol the
// fanout and groups scenarios use, doing the least any server must do to
// deliver their frames: a status set by an agent device is framed once and
// written with one write(2) per socket to the agent's devices and to the
// widgets of its groups (of the whole site for an agent in no group), in a
// loop on the device's reader goroutine, with no NATS, no hub, no queue, no
// lock held while writing and no keepalive. A group's widget shows the
// status of the agent that changed last, which is the hub's answer when each
// group has one agent, as in the groups scenario.
// Its CPU per 1,000 deliveries, measured by the generator with --pids like
// a hub's, is the floor the hub's figure is compared with in
// docs/benchmarks.md.

const floorUsage = `presence-load floor: a stand-in hub for measuring the write(2) floor.

Usage: presence-load floor --addr HOST:PORT --jwt-secret SECRET

Then run the generator's fanout or groups scenario against it with --pids.
`

// runFloor serves the floor until ctx is done.
func runFloor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("presence-load floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, floorUsage); fs.PrintDefaults() }
	addr := fs.String("addr", "127.0.0.1:18182", "listen address")
	secret := fs.String("jwt-secret", "", "HS256 secret the agents' tokens are signed with (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	if *secret == "" {
		fmt.Fprintln(stderr, "presence-load floor: --jwt-secret is required")
		return errUsage
	}
	auth, err := transport.NewAuth([]byte(*secret))
	if err != nil {
		return err
	}
	if err := raiseFileLimit(0); err != nil { // as many as the process may have
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	fmt.Fprintf(stdout, "floor listening on http://%s\n", ln.Addr())
	return serveFloor(ctx, ln, auth)
}

// serveFloor serves the floor on ln until ctx is done, then closes every
// socket and waits for their readers.
func serveFloor(ctx context.Context, ln net.Listener, auth *transport.Auth) error {
	f := &floor{auth: auth, sites: make(map[string]*floorSite)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/widget", f.serveWidget)
	mux.HandleFunc("GET /v1/agent", f.serveAgent)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		srv.Close()
		f.closeAll()
	})
	defer stop()
	err := srv.Serve(ln)
	f.readers.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

type floor struct {
	auth    *transport.Auth
	readers sync.WaitGroup

	mu    sync.Mutex
	sites map[string]*floorSite // guarded by mu
}

// floorSite is one site: its widgets by group ("" for the site's own) with
// the status each shows, and its agents' devices. Guarded by floor.mu.
type floorSite struct {
	widgets map[string]map[*floorConn]struct{}
	status  map[string]string
	anyone  string                             // the status set last by an agent in no group
	devices map[string]map[*floorConn]struct{} // by agent
}

func (f *floor) siteLocked(id string) *floorSite {
	s := f.sites[id]
	if s == nil {
		s = &floorSite{widgets: make(map[string]map[*floorConn]struct{}), status: make(map[string]string), devices: make(map[string]map[*floorConn]struct{})}
		f.sites[id] = s
	}
	return s
}

// widgetStatusLocked is what group's widget shows: offline until an agent
// counting for it connects or changes.
func (s *floorSite) widgetStatusLocked(group string) string {
	if st, ok := s.status[group]; ok {
		return st
	}
	if s.anyone != "" {
		return s.anyone
	}
	return "offline"
}

// setLocked records the status an agent of groups set, for the widgets it
// counts for, and returns those widgets' groups.
func (s *floorSite) setLocked(groups []string, status string) []string {
	gs := s.groupsLocked(groups)
	if len(groups) == 0 {
		s.anyone = status
	}
	for _, g := range gs {
		s.status[g] = status
	}
	return gs
}

// groupsLocked lists the widget groups an agent of groups counts for: its
// groups and the site's own widget, or every widget of the site.
func (s *floorSite) groupsLocked(groups []string) []string {
	if len(groups) == 0 {
		all := make([]string, 0, len(s.widgets)+1)
		all = append(all, "")
		for g := range s.widgets {
			if g != "" {
				all = append(all, g)
			}
		}
		return all
	}
	return append([]string{""}, groups...)
}

func (f *floor) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sites {
		for _, set := range s.widgets {
			for c := range set {
				c.conn.Close()
			}
		}
		for _, set := range s.devices {
			for c := range set {
				c.conn.Close()
			}
		}
	}
}

// floorConn is one upgraded socket.
type floorConn struct {
	conn net.Conn
	fd   syscall.RawConn
	r    *bufio.Reader
}

// write writes b with one non-blocking write(2) when the kernel takes it,
// as the hub does for an idle socket, and blocks for the rest.
func (c *floorConn) write(b []byte) {
	n := 0
	c.fd.Write(func(fd uintptr) bool {
		for {
			w, err := syscall.Write(int(fd), b)
			if err == syscall.EINTR {
				continue
			}
			if w > 0 {
				n = w
			}
			return true
		}
	})
	if n < len(b) {
		c.conn.Write(b[n:])
	}
}

// upgrade does the opening handshake (RFC 6455 section 4.2.2) and hijacks
// the connection.
func upgradeFloor(w http.ResponseWriter, r *http.Request) (*floorConn, error) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "not a WebSocket upgrade", http.StatusBadRequest)
		return nil, errors.New("not a WebSocket upgrade")
	}
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return nil, fmt.Errorf("failed to hijack: %w", err)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
	if _, err := conn.Write([]byte(resp)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("failed to answer the upgrade: %w", err)
	}
	fd, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("failed to get the connection's descriptor: %w", err)
	}
	return &floorConn{conn: conn, fd: fd, r: brw.Reader}, nil
}

// readMessage reads the next client frame, unmasked. The generator sends
// small, unfragmented frames; a close frame or an error ends the socket.
func (c *floorConn) readMessage() ([]byte, error) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return nil, err
		}
		n := uint64(h[1] & 0x7F)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(c.r, l[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(c.r, l[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(l[:])
		}
		if n > 1<<20 {
			return nil, errors.New("frame too large")
		}
		var mask [4]byte
		if h[1]&0x80 != 0 {
			if _, err := io.ReadFull(c.r, mask[:]); err != nil {
				return nil, err
			}
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(c.r, p); err != nil {
			return nil, err
		}
		for i := range p {
			p[i] ^= mask[i%4]
		}
		switch h[0] & 0x0F {
		case 0x1, 0x2:
			return p, nil
		case 0x8:
			c.write(serverFrame(0x8, p[:min(len(p), 2)]))
			return nil, io.EOF
		case 0x9:
			c.write(serverFrame(0xA, p))
		}
	}
}

// serverFrame frames payload as an unmasked, final frame of opcode op.
func serverFrame(op byte, payload []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func widgetStatusFrame(site, group, status string) []byte {
	reason := map[string]string{"online": "agents_online", "busy": "all_busy", "offline": "no_agents"}[status]
	return serverFrame(0x1, fmt.Appendf(nil, `{"type":"widget_status","site":%q,"group":%q,"status":%q,"reason":%q,"next_change":null,"at":%q}`,
		site, group, status, reason, time.Now().UTC().Format(time.RFC3339Nano)))
}

func (f *floor) serveWidget(w http.ResponseWriter, r *http.Request) {
	site, group := r.URL.Query().Get("site"), r.URL.Query().Get("group")
	c, err := upgradeFloor(w, r)
	if err != nil {
		return
	}
	f.mu.Lock()
	s := f.siteLocked(site)
	if s.widgets[group] == nil {
		s.widgets[group] = make(map[*floorConn]struct{})
	}
	s.widgets[group][c] = struct{}{}
	c.write(widgetStatusFrame(site, group, s.widgetStatusLocked(group)))
	f.mu.Unlock()
	f.readers.Go(func() {
		defer c.conn.Close()
		for {
			if _, err := c.readMessage(); err != nil {
				break
			}
		}
		f.mu.Lock()
		delete(s.widgets[group], c)
		f.mu.Unlock()
	})
}

func (f *floor) serveAgent(w http.ResponseWriter, r *http.Request) {
	c, err := upgradeFloor(w, r)
	if err != nil {
		return
	}
	f.readers.Go(func() {
		defer c.conn.Close()
		f.readAgent(c)
	})
}

// readAgent serves one agent device: hello, then set_status, each fanned
// out to the agent's devices and its groups' widgets at once.
func (f *floor) readAgent(c *floorConn) {
	var site, agent, device string
	var groups []string
	defer func() {
		if site != "" {
			f.mu.Lock()
			delete(f.sites[site].devices[agent], c)
			f.mu.Unlock()
		}
	}()
	for {
		data, err := c.readMessage()
		if err != nil {
			return
		}
		var m struct {
			Type, Token, Status, Ref string
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch {
		case m.Type == "hello" && site == "":
			claims, err := f.auth.Verify(m.Token)
			if err != nil {
				c.write(serverFrame(0x1, fmt.Appendf(nil, `{"type":"error","code":"unauthorized","message":%q}`, err.Error())))
				return
			}
			site, agent, groups, device = claims.Site, claims.Subject, claims.Groups, uuid.NewString()
			f.mu.Lock()
			s := f.siteLocked(site)
			status := "online" // as the hub, an agent that connects is online until it says otherwise
			if len(s.devices[agent]) == 0 {
				s.setLocked(groups, status)
			} else {
				status = s.widgetStatusLocked(s.groupsLocked(groups)[0])
			}
			if s.devices[agent] == nil {
				s.devices[agent] = make(map[*floorConn]struct{})
			}
			s.devices[agent][c] = struct{}{}
			f.mu.Unlock()
			c.write(serverFrame(0x1, fmt.Appendf(nil, `{"type":"welcome","session":%q,"device":%q,"status":%q,"devices":[]}`, uuid.NewString(), device, status)))
		case m.Type == "set_status" && site != "":
			f.setStatus(site, agent, groups, device, m.Status, m.Ref)
		}
	}
}

// setStatus fans one status change out: the frames are made once and
// written to the agent's devices and its groups' widgets, after the lock is
// released.
func (f *floor) setStatus(site, agent string, groups []string, device, status, ref string) {
	type fanOut struct {
		group   string
		widgets []*floorConn
	}
	f.mu.Lock()
	s := f.sites[site]
	var outs []fanOut
	for _, g := range s.setLocked(groups, status) {
		out := fanOut{group: g, widgets: make([]*floorConn, 0, len(s.widgets[g]))}
		for c := range s.widgets[g] {
			out.widgets = append(out.widgets, c)
		}
		outs = append(outs, out)
	}
	devices := make([]*floorConn, 0, len(s.devices[agent]))
	for c := range s.devices[agent] {
		devices = append(devices, c)
	}
	f.mu.Unlock()
	st := serverFrame(0x1, fmt.Appendf(nil, `{"type":"status","status":%q,"by_device":%q,"ref":%q,"at":%q}`,
		status, device, ref, time.Now().UTC().Format(time.RFC3339Nano)))
	for _, c := range devices {
		c.write(st)
	}
	for _, out := range outs {
		ws := widgetStatusFrame(site, out.group, status)
		for _, c := range out.widgets {
			c.write(ws)
		}
	}
}
