package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
)

// Defaults for Config.
const (
	DefaultBucket         = "PRESENCE_WEBHOOKS"
	DefaultDeliveryStream = "PRESENCE_WEBHOOK_DELIVERIES"
	DefaultTimeout        = 10 * time.Second
	DefaultMaxPerSite     = 20
	DefaultMaxPending     = 1000
	DefaultConcurrency    = 4
	DefaultDeliveriesKept = 100
	// DeliveriesSubjectPrefix starts the subject of an endpoint's attempts:
	// presence.webhook-deliveries.<site>.<endpoint id>.
	DeliveriesSubjectPrefix = "presence.webhook-deliveries."
	// deliveriesMaxAge is how long an attempt stays in the deliveries log
	// at most: longer than the default retry schedule. Open refuses a
	// schedule that could outlast it (retrySpan).
	deliveriesMaxAge = 7 * 24 * time.Hour
)

// DefaultRetrySchedule is the delays between attempts: about a day, as
// common webhook services retry.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Config configures a Manager.
type Config struct {
	// JetStream is the hub's JetStream context.
	JetStream jetstream.JetStream
	// EventStream is the name of the event stream (events.OpenStream).
	EventStream string
	// Bucket holds the registrations; DeliveryStream the attempts.
	Bucket         string
	DeliveryStream string
	// Replicas of the bucket, the delivery stream and the consumers.
	Replicas int
	// Timeout bounds one attempt, from connecting to the answer's status.
	Timeout time.Duration
	// RetrySchedule is the delays between attempts; after the last one
	// fails, the event is given up for that endpoint. From the first
	// attempt to the last it must fit in the deliveries log's 7 days and
	// in the event stream's retention.
	RetrySchedule []time.Duration
	// AllowPrivate lets endpoints be on loopback, private and link-local
	// addresses, and use plain http (tests, private deployments).
	AllowPrivate bool
	// MaxPerSite is how many endpoints one site may register.
	MaxPerSite int
	// MaxPending is how many events one endpoint may have in flight or
	// waiting for a retry; beyond it, newer events wait in the event
	// stream until some are done.
	MaxPending int
	// Concurrency is how many requests one replica has in flight to one
	// endpoint.
	Concurrency int
	// DeliveriesKept is how many recent attempts are kept per endpoint.
	DeliveriesKept int
	// UserAgent is sent with every request.
	UserAgent string
	// Replica names this replica in the deliveries log.
	Replica string
	// Logger receives the logs; secrets are never logged.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Manager registers endpoints and delivers events to them.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	kv       *store.Records
	events   jetstream.Stream
	client   *http.Client
	resolver *net.Resolver
	m        metrics

	mu sync.Mutex
	// loops holds the delivery loop of each enabled endpoint, by id.
	// Guarded by mu.
	loops map[string]*loop
}

type metrics struct {
	attempts *prometheus.CounterVec
	duration prometheus.Histogram
}

// Open creates the registrations bucket and the deliveries stream, or
// updates them to cfg, and returns a Manager. Run delivers.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.EventStream == "" {
		cfg.EventStream = events.DefaultStream
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.DeliveryStream == "" {
		cfg.DeliveryStream = DefaultDeliveryStream
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetrySchedule == nil {
		cfg.RetrySchedule = DefaultRetrySchedule
	}
	if cfg.MaxPerSite == 0 {
		cfg.MaxPerSite = DefaultMaxPerSite
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.DeliveriesKept == 0 {
		cfg.DeliveriesKept = DefaultDeliveriesKept
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "presencehub-webhooks"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout < 0 || cfg.MaxPerSite < 0 || cfg.MaxPending < 0 || cfg.Concurrency < 0 || cfg.DeliveriesKept < 0 {
		return nil, errors.New("webhook limits and the timeout must be positive")
	}
	for _, d := range cfg.RetrySchedule {
		if d <= 0 {
			return nil, errors.New("webhook retry delays must be positive")
		}
	}
	// The deliveries log must still hold an event's first attempt when its
	// last one is recorded, or the log would show the retries of an event
	// without how they began.
	js := cfg.JetStream
	events, err := js.Stream(ctx, cfg.EventStream)
	if err != nil {
		return nil, fmt.Errorf("failed to find event stream %q: %w", cfg.EventStream, err)
	}
	if err := CheckRetrySchedule(cfg.RetrySchedule, cfg.Timeout, events.CachedInfo().Config.MaxAge); err != nil {
		return nil, fmt.Errorf("event stream %q: %w", cfg.EventStream, err)
	}
	kv, err := store.OpenRecords(ctx, js, store.RecordsConfig{
		Name:        cfg.Bucket,
		Description: "presencehub: webhook endpoints (docs/events.md)",
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open webhook bucket %q: %w", cfg.Bucket, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              cfg.DeliveryStream,
		Description:       "presencehub: recent webhook delivery attempts",
		Subjects:          []string{DeliveriesSubjectPrefix + ">"},
		MaxMsgsPerSubject: int64(cfg.DeliveriesKept),
		MaxAge:            deliveriesMaxAge,
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open webhook deliveries stream %q: %w", cfg.DeliveryStream, err)
	}
	m := &Manager{
		cfg:      cfg,
		log:      cfg.Logger,
		kv:       kv,
		events:   events,
		resolver: net.DefaultResolver,
		loops:    make(map[string]*loop),
		m: metrics{
			attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "presencehub_webhook_attempts_total",
				Help: "Webhook delivery attempts by outcome: delivered, retrying, given_up, disabled.",
			}, []string{"outcome"}),
			duration: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name:    "presencehub_webhook_attempt_seconds",
				Help:    "Time from sending a webhook request to its answer or failure.",
				Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
			}),
		},
	}
	m.client = newClient(cfg.Timeout, cfg.AllowPrivate)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(m.m.attempts); err != nil {
			return nil, fmt.Errorf("failed to register metrics: %w", err)
		}
		if err := cfg.Registerer.Register(m.m.duration); err != nil {
			return nil, fmt.Errorf("failed to register metrics: %w", err)
		}
	}
	return m, nil
}

// CheckRetrySchedule reports whether an event's attempts on schedule, each
// taking up to timeout, fit from the first to the last in the deliveries
// log's 7 days, so that the log still holds how an event's retries began,
// and in the event stream's retention (0: none), since a retry is the
// stream's message delivered again: once the stream has removed it, the
// attempts left never happen, and nothing records that they did not.
func CheckRetrySchedule(schedule []time.Duration, timeout, retention time.Duration) error {
	span := retrySpan(schedule, timeout)
	if span > deliveriesMaxAge {
		return fmt.Errorf("webhook retry schedule %s spans up to %v (each delay gets up to a tenth more, each attempt up to the timeout %v), more than the %v the deliveries log keeps an attempt",
			durations(schedule), span, timeout, deliveriesMaxAge)
	}
	if retention > 0 && span > retention {
		return fmt.Errorf("webhook retry schedule %s spans up to %v (each delay gets up to a tenth more, each attempt up to the timeout %v), more than the %v the event stream keeps events",
			durations(schedule), span, timeout, retention)
	}
	return nil
}

// retrySpan is the longest time from an event's first attempt to its last
// with schedule: every delay with the most jitter adds, every attempt but the
// last taking the whole timeout. Time an event waits behind others for its
// turn is not counted; it has no bound. It saturates rather than wrap, so
// that absurd flags are refused rather than let through negative.
func retrySpan(schedule []time.Duration, timeout time.Duration) time.Duration {
	var span time.Duration
	for _, d := range schedule {
		step := d + d/10 + timeout
		if step < 0 || span > math.MaxInt64-step {
			return math.MaxInt64
		}
		span += step
	}
	return span
}

// durations formats a retry schedule as the flag takes it.
func durations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, ",")
}

// newClient returns the HTTP client of deliveries: no proxy from the
// environment (the address guard must see the real peer), no redirects
// (a 3xx is an answer, not a delivery), and, unless private addresses are
// allowed, a dialer that refuses them.
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = dialControl
	}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// AllowPrivate reports whether private endpoint addresses are allowed.
func (m *Manager) AllowPrivate() bool { return m.cfg.AllowPrivate }

// Create registers an endpoint for site and returns it with its secret,
// which is shown only this once. The consumer holding its deliveries is
// created first, so that an endpoint in the bucket always has one; events
// from then on are delivered.
func (m *Manager) Create(ctx context.Context, site string, reg Registration) (Endpoint, error) {
	u, err := parseURL(reg.URL, m.cfg.AllowPrivate)
	if err != nil {
		return Endpoint{}, err
	}
	events, err := normalizeEvents(reg.Events)
	if err != nil {
		return Endpoint{}, err
	}
	if !m.cfg.AllowPrivate {
		if err := checkHost(ctx, m.resolver, u.Hostname()); err != nil {
			return Endpoint{}, &FieldError{Field: "url", Msg: err.Error() + " (allowed only with --webhook-allow-private)"}
		}
	}
	existing, err := m.keys(ctx, site)
	if err != nil {
		return Endpoint{}, err
	}
	if len(existing) >= m.cfg.MaxPerSite {
		return Endpoint{}, fmt.Errorf("%w (%d)", ErrTooMany, m.cfg.MaxPerSite)
	}
	ep := Endpoint{
		ID:        uuid.NewString(),
		Site:      site,
		URL:       u.String(),
		Events:    events,
		Secret:    newSecret(),
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	if _, err := m.events.CreateConsumer(ctx, m.consumerConfig(ep)); err != nil {
		return Endpoint{}, fmt.Errorf("failed to create the webhook's consumer: %w", err)
	}
	b, err := json.Marshal(ep)
	if err != nil {
		return Endpoint{}, fmt.Errorf("failed to encode webhook: %w", err)
	}
	if err := m.kv.Create(ctx, endpointKey(site, ep.ID), b); err != nil {
		m.deleteConsumer(context.WithoutCancel(ctx), ep.ID)
		return Endpoint{}, fmt.Errorf("failed to store webhook: %w", err)
	}
	m.log.Info("webhook registered", "site", site, "webhook", ep.ID, "host", u.Host, "events", strings.Join(events, ","))
	return ep, nil
}

// consumerConfig is the durable consumer of an endpoint's deliveries. Its
// ack wait outlasts an attempt with room for the batch it came in, so an
// event is handed to another replica only when the one holding it is gone.
func (m *Manager) consumerConfig(ep Endpoint) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        consumerName(ep.ID),
		Description:    "presencehub webhook " + ep.ID + " of site " + ep.Site,
		FilterSubjects: filterSubjects(ep.Site, ep.Events),
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        m.ackWait(),
		MaxAckPending:  m.cfg.MaxPending,
		Replicas:       m.cfg.Replicas,
		Metadata:       map[string]string{"site": ep.Site, "webhook": ep.ID},
	}
}

func (m *Manager) ackWait() time.Duration { return 2*m.cfg.Timeout + 5*time.Second }

// keys lists the keys of site's endpoints.
func (m *Manager) keys(ctx context.Context, site string) ([]string, error) {
	keys, err := m.kv.Keys(ctx, site+".*")
	if err != nil {
		return nil, fmt.Errorf("failed to list webhooks: %w", err)
	}
	return keys, nil
}

// List returns site's endpoints without their secrets, oldest first.
func (m *Manager) List(ctx context.Context, site string) ([]Endpoint, error) {
	keys, err := m.keys(ctx, site)
	if err != nil {
		return nil, err
	}
	eps := make([]Endpoint, 0, len(keys))
	for _, k := range keys {
		ep, err := m.get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep.Public())
	}
	slices.SortFunc(eps, func(a, b Endpoint) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return eps, nil
}

// Get returns one of site's endpoints without its secret.
func (m *Manager) Get(ctx context.Context, site, id string) (Endpoint, error) {
	if !validID(id) {
		return Endpoint{}, ErrNotFound
	}
	ep, err := m.get(ctx, endpointKey(site, id))
	return ep.Public(), err
}

func (m *Manager) get(ctx context.Context, key string) (Endpoint, error) {
	value, _, err := m.kv.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return Endpoint{}, ErrNotFound
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("failed to read webhook: %w", err)
	}
	var ep Endpoint
	if err := json.Unmarshal(value, &ep); err != nil {
		return Endpoint{}, fmt.Errorf("failed to decode webhook %s: %w", key, err)
	}
	return ep, nil
}

// Delete removes one of site's endpoints, its pending deliveries and its
// deliveries log.
func (m *Manager) Delete(ctx context.Context, site, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	key := endpointKey(site, id)
	if _, err := m.get(ctx, key); err != nil {
		return err
	}
	if err := m.kv.Purge(ctx, key); err != nil {
		return fmt.Errorf("failed to remove webhook: %w", err)
	}
	m.deleteConsumer(ctx, id)
	if s, err := m.cfg.JetStream.Stream(ctx, m.cfg.DeliveryStream); err == nil {
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(deliveriesSubject(site, id))); err != nil {
			m.log.Warn("failed to purge webhook deliveries log", "site", site, "webhook", id, "err", err)
		}
	}
	m.log.Info("webhook removed", "site", site, "webhook", id)
	return nil
}

func (m *Manager) deleteConsumer(ctx context.Context, id string) {
	err := m.events.DeleteConsumer(ctx, consumerName(id))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		m.log.Warn("failed to delete webhook consumer", "webhook", id, "err", err)
	}
}
