package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Health: a TCP connection to a NATS server says nothing about whether that
// server still answers. A frozen server keeps its sockets open, and one cut
// off from the bucket's stream replicas answers nothing about the bucket.
// So Run probes JetStream every HealthEvery with a cheap read, and a
// replica is healthy only while the last probe was answered.

// Defaults for Config.
const (
	DefaultHealthEvery = 2 * time.Second
)

// errNotProbed is the health before the first probe answered.
var errNotProbed = errors.New("JetStream not probed yet")

// health holds the outcome of the last JetStream probe.
type health struct {
	err atomic.Pointer[error] // nil pointer: answered
}

func (hl *health) set(err error) {
	if err == nil {
		hl.err.Store(nil)
		return
	}
	hl.err.Store(&err)
}

func (hl *health) get() error {
	if p := hl.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Healthy reports why this replica cannot serve now, or nil: the NATS
// connection is down, JetStream did not answer the last probe, or the view
// has not loaded. /readyz uses it, so that a load balancer moves clients
// off a replica whose NATS server froze while its socket stayed open.
func (h *Hub) Healthy() error {
	if st := h.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("NATS %s", strings.ToLower(st.String()))
	}
	if err := h.health.get(); err != nil {
		return err
	}
	if !h.Ready() {
		return errors.New("view not loaded")
	}
	return nil
}

// probeJetStream probes the bucket (store.Probe) every HealthEvery, each
// answer bounded by HealthEvery too, until ctx is done. (An account-info
// request, answered by the meta leader alone, was tried first: every
// replica reported not ready while the meta leader was elected.)
func (h *Hub) probeJetStream(ctx context.Context) error {
	t := time.NewTicker(h.cfg.HealthEvery)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, h.cfg.HealthEvery)
		err := h.store.Partition(0).Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		prev := h.health.get()
		if err != nil {
			err = fmt.Errorf("JetStream not answering: %w", err)
			if prev == nil {
				h.log.Warn("JetStream probe failed: not ready", "err", err)
			}
		} else if prev != nil && !errors.Is(prev, errNotProbed) {
			h.log.Info("JetStream answers again: ready")
		}
		h.health.set(err)
		h.metrics.jetstreamHealthy.Set(boolFloat(err == nil))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
