package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/jsretry"
)

// StreamConfig says how the event stream is created.
type StreamConfig struct {
	Name      string        // default DefaultStream
	Retention time.Duration // default DefaultRetention
	Replicas  int           // default 1; as the bucket's
}

// WithDefaults returns c with the defaults of its zero fields.
func (c StreamConfig) WithDefaults() StreamConfig {
	if c.Name == "" {
		c.Name = DefaultStream
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// OpenStream creates the event stream, or updates an existing one to
// cfg, as OpenBucket does for the bucket.
func OpenStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	cfg = cfg.WithDefaults()
	s, err := jsretry.OpenStream(ctx, js, jetstream.StreamConfig{
		Name:        cfg.Name,
		Description: "presencehub: availability events (docs/events.md)",
		Subjects:    []string{SubjectPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  DuplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open event stream %q: %w", cfg.Name, err)
	}
	return s, nil
}
