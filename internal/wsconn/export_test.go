package wsconn

// RunPoller is the poller of this run of the tests (main_test.go).
func RunPoller() Poller { return defaultPoller }

// Served reports whether c is served by the poller with its deadlines in the
// poller's queue, and whether it has a timer of its own.
func (c *Conn) Served() (polled, ownTimer bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.poll != nil && c.dq != nil, c.timer != nil
}
