package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/internal/dirlock"
)

// The embedded nats-server keeps the whole state of a one-process
// deployment in --data-dir. What keeps that store safe lives here: the lock
// that keeps a second process off it, the sync setting that says what an
// acknowledgement survives, the check at start-up that refuses a store
// damaged while the hub was stopped (and never lets an empty stream take
// the place of one nats-server could not load), and the keeper that
// restarts JetStream once a full disk has room again
// (docs/operations.md#durability).

const (
	// defaultNATSSync is --nats-sync's default: every write is on disk
	// before it is acknowledged (docs/benchmarks.md#sync-to-disk measures
	// the cost).
	defaultNATSSync = "always"
	// lockFileName is the lock file in --data-dir: it holds the pid of the
	// process that runs on it, or "stopped" after a clean stop.
	lockFileName = "presencehub.lock"
	// damagedFileName, in --data-dir, records that start-up found the store
	// damaged; serve refuses the directory while it is there.
	damagedFileName = "store-damaged"
	// embeddedMaxStore is JetStream's storage limit in the embedded
	// server. nats-server's own default is 75% of the disk space free when
	// it starts, fixed from then on: a store that reaches it is refused
	// every write until a restart, however much space is freed meanwhile.
	// With a limit no disk of a hub reaches, the disk itself is the limit,
	// and a full disk is what the store keeper handles.
	embeddedMaxStore = natsserver.JetStreamMaxStoreDefault
	// storeCheckEvery is how often the store keeper looks at a store that
	// cannot write; storeMinFree the free space it waits for, and
	// storeRestartEvery the least time between two restarts of JetStream.
	storeCheckEvery   = time.Second
	storeMinFree      = 1 << 20
	storeRestartEvery = 5 * time.Second
)

// parseNATSSync reads --nats-sync: "always", or a positive interval.
func parseNATSSync(s string) (always bool, interval time.Duration, err error) {
	if s == "always" {
		return true, 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return false, 0, fmt.Errorf("invalid --nats-sync %q: want always, or an interval such as 1s or 2m", s)
	}
	return false, d, nil
}

// lockDataDir takes --data-dir for this process when it runs the embedded
// nats-server (nil otherwise: with --nats-url the directory holds at most
// the signing secret, which replicas may share). A second process on the
// same directory is refused at once, naming the holder; the lock goes with
// the process, however it ends.
func lockDataDir(cfg *serveConfig) (*dirlock.Lock, error) {
	if cfg.natsURL != "" {
		return nil, nil
	}
	l, err := dirlock.Acquire(cfg.dataDir, lockFileName)
	var held *dirlock.HeldError
	if errors.As(err, &held) {
		who := "another presencehub process"
		if held.PID > 0 {
			who = fmt.Sprintf("another presencehub process (pid %d)", held.PID)
		}
		return nil, fmt.Errorf("--data-dir %s is in use by %s: two processes on one store damage it; stop that one first, or give this one a --data-dir of its own", cfg.dataDir, who)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to lock --data-dir %s: %w", cfg.dataDir, err)
	}
	return l, nil
}

// embeddedOptions are the embedded nats-server's options for cfg.
func embeddedOptions(cfg *serveConfig) (*natsserver.Options, error) {
	always, interval, err := parseNATSSync(cfg.natsSync)
	if err != nil {
		return nil, err
	}
	o := &natsserver.Options{
		ServerName:        "presencehub-embedded",
		JetStream:         true,
		StoreDir:          filepath.Join(cfg.dataDir, "nats"),
		JetStreamMaxStore: embeddedMaxStore,
		SyncAlways:        always,
		SyncInterval:      interval,
		NoSigs:            true,
		DontListen:        cfg.natsListen == "",
	}
	if cfg.natsListen != "" {
		if o.Host, o.Port, err = splitNATSListen(cfg.natsListen); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// embeddedNATS is the running in-process nats-server with its store.
type embeddedNATS struct {
	ns   *natsserver.Server
	opts *natsserver.Options
	nlog *natsLog
	log  *slog.Logger
	lock *dirlock.Lock
	// dataDir is --data-dir, storeDir the store's directory in it.
	dataDir, storeDir string
	guard             *storeGuard
	// conn is the hub's connection to the server, once it is made.
	conn atomic.Pointer[nats.Conn]

	stop chan struct{} // closed to stop the store keeper
	done chan struct{} // closed when the store keeper returned
}

// startEmbedded starts the embedded nats-server on the store in
// --data-dir, which lock holds (nil only in tests), and checks what it
// recovered.
func startEmbedded(cfg *serveConfig, lock *dirlock.Lock, log *slog.Logger) (*embeddedNATS, error) {
	damaged := filepath.Join(cfg.dataDir, damagedFileName)
	if b, err := os.ReadFile(damaged); err == nil {
		return nil, fmt.Errorf("refusing the store in --data-dir %s, found damaged at an earlier start (%s):\n%s", cfg.dataDir, damaged, strings.TrimSpace(string(b)))
	}
	opts, err := embeddedOptions(cfg)
	if err != nil {
		return nil, err
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("failed to start embedded NATS: %w", err)
	}
	e := &embeddedNATS{
		ns: ns, opts: opts, log: log, lock: lock,
		dataDir: cfg.dataDir, storeDir: opts.StoreDir,
		guard: &storeGuard{},
		stop:  make(chan struct{}), done: make(chan struct{}),
	}
	e.nlog = &natsLog{log: log.With("nats", "embedded"), starting: true, onFault: e.guard.fail}
	ns.SetLoggerV2(e.nlog, false, false, false)
	ns.Start()
	// Start reports a failure to listen (or to start JetStream) only to the
	// logger, and then ReadyForConnections would wait out its whole timeout:
	// ask the logger first.
	if err := e.nlog.fatalErr(); err != nil {
		e.shutdownServer()
		if cfg.natsListen != "" {
			return nil, fmt.Errorf("failed to start embedded NATS (--nats-listen %s): %w", cfg.natsListen, err)
		}
		return nil, fmt.Errorf("failed to start embedded NATS: %w", err)
	}
	if !ns.ReadyForConnections(cfg.startupTimeout) {
		e.shutdownServer()
		return nil, errors.New("embedded NATS did not become ready")
	}
	if err := e.checkRecovered(e.nlog.endStartup()); err != nil {
		e.shutdownServer()
		return nil, err
	}
	go e.keepStoreWritable()
	return e, nil
}

// rebuiltLine is what nats-server logs when a stream's files are not as it
// left them (an index that does not match the blocks, a block gone or cut
// short): it rebuilds the stream from what it can read. After a crash that
// is the normal way back; after a clean stop it means the files changed
// while the hub was stopped.
var rebuiltLine = regexp.MustCompile(`^Filestore \[([^\]]+)\] (.*[Ss]tream state.*)$`)

// checkRecovered checks what nats-server recovered from the store, given
// the warnings and errors it logged while starting. A stream whose
// directory is in the store but which nats-server did not load is refused:
// opening the hub would create an empty stream in its place, emptying
// settings, schedules or webhooks without a word. A stream that
// nats-server had to rebuild after a clean stop is refused too, and the
// directory marked damaged (damagedFileName) until an operator decides.
// A rebuild after an unclean stop (a crash, a kill, a power cut) is how
// the store comes back; it is logged.
func (e *embeddedNATS) checkRecovered(startup []string) error {
	info, err := e.ns.Jsz(&natsserver.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return fmt.Errorf("failed to list the embedded store's streams: %w", err)
	}
	loaded := map[string]bool{}
	for _, acc := range info.AccountDetails {
		for _, s := range acc.Streams {
			loaded[s.Name] = true
		}
	}
	// The embedded server has one account, the global one ($G).
	streamsDir := filepath.Join(e.storeDir, natsserver.JetStreamStoreDir, natsserver.DEFAULT_GLOBAL_ACCOUNT, "streams")
	dirs, err := os.ReadDir(streamsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to read the embedded store: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || loaded[d.Name()] {
			continue
		}
		dir := filepath.Join(streamsDir, d.Name())
		return fmt.Errorf("stream %s is in the store (%s) but nats-server could not load it%s; starting would put an empty stream in its place. "+
			"Restore the last backup into a new --data-dir (docs/operations.md#backup-and-restore), or move %s out of the store to start that stream empty",
			d.Name(), dir, quoteLines(linesAbout(startup, d.Name())), dir)
	}

	rebuilt := map[string][]string{}
	for _, line := range startup {
		if m := rebuiltLine.FindStringSubmatch(line); m != nil {
			rebuilt[m[1]] = append(rebuilt[m[1]], m[2])
		}
	}
	if len(rebuilt) == 0 {
		return nil
	}
	names := make([]string, 0, len(rebuilt))
	for name := range rebuilt {
		names = append(names, name)
	}
	slices.Sort(names)
	var what []string
	for _, name := range names {
		what = append(what, fmt.Sprintf("%s (%s)", name, strings.Join(rebuilt[name], "; ")))
	}
	if e.lock == nil || !e.lock.PreviousStopClean() {
		e.log.Warn("nats-server rebuilt streams of the store after an unclean stop (a crash, a kill or a power cut); "+
			"what it could not read back is gone: with --nats-sync always no acknowledged write, otherwise writes acknowledged since the last sync",
			"streams", strings.Join(what, ", "), "nats_sync", e.opts.SyncAlways)
		return nil
	}
	damaged := filepath.Join(e.dataDir, damagedFileName)
	msg := fmt.Sprintf("the store in %s changed while presencehub was stopped (it had stopped cleanly): nats-server found %s unlike it left them and rebuilt them from what it could read; whatever it could not read is gone. "+
		"Either restore the last backup into a new --data-dir (docs/operations.md#backup-and-restore), or, to go on with what nats-server recovered, delete %s and start again. Found %s.",
		e.storeDir, strings.Join(what, ", "), damaged, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(damaged, []byte(msg+"\n"), 0o600); err != nil {
		return fmt.Errorf("%s (and failed to record it in %s: %v)", msg, damaged, err)
	}
	return errors.New(msg)
}

// linesAbout returns the lines that mention name.
func linesAbout(lines []string, name string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, name) {
			out = append(out, l)
		}
	}
	return out
}

// quoteLines is lines as a clause for an error message.
func quoteLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return " (it logged: " + strings.Join(lines, "; ") + ")"
}

// storeErr reports why the store cannot write now, or nil.
func (e *embeddedNATS) storeErr() error {
	since, cause := e.guard.get()
	if cause == nil {
		return nil
	}
	return fmt.Errorf("JetStream store cannot write since %s: %v (JetStream restarts once %d MiB are free under %s)",
		since.UTC().Format(time.RFC3339), cause, storeMinFree>>20, e.storeDir)
}

// keepStoreWritable restarts JetStream when the store has failed a write
// and the disk has room again. nats-server never clears a stream's write
// error by itself (a full disk leaves the stream refusing every write, with
// no answer to the client, after the space is back): JetStream must load
// the stream again. What was acknowledged is in the stream's files, so
// nothing acknowledged is lost; the write that failed was never
// acknowledged.
func (e *embeddedNATS) keepStoreWritable() {
	defer close(e.done)
	t := time.NewTicker(storeCheckEvery)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		// nats-server turns JetStream off by itself on some store errors
		// (a permission denied): that needs a restart as much.
		if !e.ns.JetStreamEnabled() {
			e.guard.fail("nats-server turned JetStream off")
		}
		_, cause := e.guard.get()
		if cause == nil || time.Since(last) < storeRestartEvery {
			continue
		}
		if free, ok := freeBytes(e.storeDir); ok && free < storeMinFree {
			continue
		}
		last = time.Now()
		e.restartJetStream(cause)
	}
}

// restartJetStream shuts JetStream down and starts it again on the same
// store, as nats-server does when a configuration reload turns it back on.
func (e *embeddedNATS) restartJetStream(cause error) {
	e.log.Warn("restarting JetStream: its store failed a write", "cause", cause, "dir", e.storeDir)
	if err := e.ns.ShutdownJetStream(); err != nil {
		e.log.Error("failed to stop JetStream", "err", err)
		return
	}
	e.guard.clear()
	err := e.ns.EnableJetStream(&natsserver.JetStreamConfig{
		StoreDir:     e.opts.StoreDir,
		MaxStore:     e.opts.JetStreamMaxStore,
		SyncAlways:   e.opts.SyncAlways,
		SyncInterval: e.opts.SyncInterval,
	})
	if err != nil {
		e.guard.fail(fmt.Sprintf("failed to restart JetStream: %v", err))
		e.log.Error("failed to restart JetStream; trying again later", "err", err)
		return
	}
	// The hub's consumers (the bucket watch, the history's, the webhooks')
	// went with the old JetStream and would only notice missed heartbeats
	// seconds later: a reconnect makes the hub start them again at once,
	// re-reading the bucket.
	if nc := e.conn.Load(); nc != nil {
		if err := nc.ForceReconnect(); err != nil {
			e.log.Warn("failed to reconnect to the embedded NATS after restarting JetStream", "err", err)
		}
	}
	e.log.Info("JetStream restarted; its store writes again", "dir", e.storeDir)
}

// shutdown stops the store keeper and the server, and marks a clean stop
// in the lock file when the store was writable to the end and is on disk.
func (e *embeddedNATS) shutdown() {
	close(e.stop)
	<-e.done
	e.shutdownServer()
	if _, cause := e.guard.get(); cause != nil {
		e.log.Warn("the store could not write at shutdown; the next start rebuilds it", "cause", cause)
		return
	}
	if e.lock == nil {
		return
	}
	// nats-server does not sync the store when it stops (with --nats-sync
	// an interval): a power cut soon after would leave files the next start
	// must rebuild, under a lock file saying the stop was clean.
	if err := syncDisk(e.storeDir); err != nil {
		e.log.Warn("failed to sync the store to disk at shutdown", "err", err)
		return
	}
	if err := e.lock.MarkStopped(); err != nil {
		e.log.Warn("failed to mark a clean stop", "err", err)
	}
}

func (e *embeddedNATS) shutdownServer() {
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
}

// storeGuard holds why the embedded store cannot write, from what
// nats-server logs.
type storeGuard struct {
	mu    sync.Mutex
	cause error     // guarded by mu; nil while the store writes
	since time.Time // guarded by mu
}

func (g *storeGuard) fail(msg string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cause == nil {
		g.cause, g.since = errors.New(msg), time.Now()
	}
}

func (g *storeGuard) clear() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cause = nil
}

func (g *storeGuard) get() (since time.Time, cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.since, g.cause
}

// isStoreFault reports whether a line nats-server logged says its store
// failed a write: a stream or consumer whose store then refuses every
// write until JetStream loads it again, or a disk that is full.
func isStoreFault(msg string) bool {
	return strings.Contains(msg, "ritical write error") || strings.Contains(msg, "no space left on device")
}
