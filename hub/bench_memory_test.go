package hub

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// BenchmarkViewHeapPerSite measures what the view keeps per site of a
// partition that this replica watches, as its owner or its standby (issue
// 22): sites of 2 agents, and of 10, each agent with one live desktop
// device, as presence-load's replicas scenario makes them. Each iteration
// feeds a new hub's partition watch (watcher.apply, events off) the
// entries of viewSites sites, an agent's record, its device's lease and
// the lease's index key (x.) per agent, in the order a client's first
// connection writes them, with keys and values made afresh per entry as a
// watch's messages are; then it runs the GC and reports the growth of the
// live heap (HeapAlloc) and of the heap's spans in use (HeapInuse) per
// site and per device. Run with
//
//	go test -run '^$' -bench ViewHeapPerSite -benchtime 3x ./hub/
//
// and see where the bytes are with -memprofile and
// go tool pprof -sample_index=inuse_space.
func BenchmarkViewHeapPerSite(b *testing.B) {
	for _, agents := range []int{2, 10} {
		b.Run(fmt.Sprintf("agents=%d", agents), func(b *testing.B) {
			benchViewHeap(b, agents)
		})
	}
}

// viewHeapHeld keeps the last view measured alive.
var viewHeapHeld *watcher

// viewSites is the number of sites each iteration puts in the view.
const viewSites = 5000

func benchViewHeap(b *testing.B, agents int) {
	be := newBucketEntries(b)
	replica := memberID(uuid.NewString())
	var alloc, inuse float64
	n := 0
	for b.Loop() {
		h := be.newHub()
		w := newWatcher(h, 0)
		before := heapNow()
		var rev uint64
		for i := range viewSites {
			site := fmt.Sprint("sim-", i)
			for j := range agents {
				agent := fmt.Sprint("sim-agent-", i*agents+j)
				device := uuid.NewString()
				for _, e := range connectEntries(b, site, agent, device, replica) {
					rev++
					e.Rev, e.Created = rev, time.Now()
					w.apply(b.Context(), e)
				}
			}
		}
		after := heapNow()
		viewHeapHeld = w // for -memprofile: the last view is in use at the end
		alloc += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		inuse += float64(after.HeapInuse) - float64(before.HeapInuse)
		n++
	}
	sites, devices := float64(n*viewSites), float64(n*viewSites*agents)
	b.ReportMetric(alloc/sites, "heap-B/site")
	b.ReportMetric(alloc/devices, "heap-B/device")
	b.ReportMetric(inuse/sites, "inuse-B/site")
	b.ReportMetric(inuse/devices, "inuse-B/device")
}

// connectEntries returns the entries a device's first connection writes
// for agent at site: the agent's record, the device's lease, and the
// lease's index key saying which replica holds it.
func connectEntries(b *testing.B, site, agent, device, replica string) []*store.Entry {
	b.Helper()
	now := time.Now()
	rec, err := json.Marshal(store.AgentRecord{Status: presence.Online, At: now})
	if err != nil {
		b.Fatal(err)
	}
	lease, err := json.Marshal(store.DeviceRecord{Kind: presence.Desktop, Since: now, Session: uuid.NewString(), Hub: replica, State: presence.Live})
	if err != nil {
		b.Fatal(err)
	}
	return []*store.Entry{
		{Key: store.AgentKey(site, agent).String(), Value: rec},
		{Key: store.LeaseKey(site, agent, device).String(), Value: lease},
		{Key: store.IndexKey(site, replica, agent, device).String(), Value: []byte("session")},
	}
}

// heapNow returns the memory statistics after a full collection.
func heapNow() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
