package cluster_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/natstest"
)

// TestCutOffMemberLosesAndRestoresLiveness: a member cut off from NATS for
// longer than the TTL is gone for the others, who take its partitions; it
// says its liveness is lost, and once it reaches NATS again, restored, and
// takes its share back.
func TestCutOffMemberLosesAndRestoresLiveness(t *testing.T) {
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	a := startNode(t, ns.ClientURL(), "hub-a", 2*time.Second)
	b := startNode(t, ns.ClientURL(), "hub-b", 2*time.Second)
	c := startNode(t, proxy.URL(), "hub-c", 2*time.Second)
	waitSettled(t, "three members share the partitions", a, b, c)

	proxy.Cut()
	eventually(t, "the two others take over from the member cut off", func() error {
		if err := sawGone(c.id, a, b); err != nil {
			return err
		}
		if !slices.Contains(c.rec.eventList(), "lost") {
			return errors.New("the member cut off has not found its liveness lost")
		}
		if owned := c.m.Owned(); len(owned) > 0 {
			return fmt.Errorf("the member cut off still owns %v", owned)
		}
		return settled(a, b)
	})

	proxy.Restore()
	eventually(t, "the member back takes its share again", func() error {
		if events := c.rec.eventList(); events[len(events)-1] != "restored" {
			return fmt.Errorf("callbacks of the member back: %v", events)
		}
		return settled(a, b, c)
	})
	events := c.rec.eventList()
	for i, e := range events {
		if want := []string{"lost", "restored"}[i%2]; e != want {
			t.Errorf("liveness callbacks %v: #%d is %s, want %s", events, i, e, want)
		}
	}
}
