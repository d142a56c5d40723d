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

// OpenStream creates the event stream, or updates an existing one to
// cfg, as OpenBucket does for the bucket.
func OpenStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultStream
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	var s jetstream.Stream
	err := jsretry.Open(ctx, func(ctx context.Context) (err error) {
		s, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Name,
			Description: "presencehub: availability events (docs/events.md)",
			Subjects:    []string{SubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      cfg.Retention,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  DuplicateWindow,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open event stream %q: %w", cfg.Name, err)
	}
	return s, nil
}
