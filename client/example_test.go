package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/presencehub/presencehub/client"
)

// A desktop app: the device id is kept between runs, the events drive the
// UI, and the status menu calls SetStatus.
func ExampleDial() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Config{
		URL:       "https://presence.example.com",
		TokenFunc: func(ctx context.Context) (string, error) { return "a token from your auth service", nil },
		Device:    client.Device{ID: "", Kind: client.Desktop}, // the saved id from the last run
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // quit: the status holds for the grace
	saveDeviceID := func(string) {}
	saveDeviceID(c.Welcome().Device)

	go func() {
		for ev := range c.Events() {
			switch ev := ev.(type) {
			case client.Status:
				fmt.Println("status", ev.Status, "by", ev.By)
			case client.State:
				if errors.Is(ev.Err, client.ErrRevoked) {
					fmt.Println("an admin signed this device out")
				}
			}
		}
	}()

	if _, err := c.SetStatus(ctx, client.Busy); errors.Is(err, client.ErrUnavailable) {
		fmt.Println("not confirmed yet; a Status event with its ref will say")
	}
}

// A mobile app going to the background, with a short deadline: the
// operating system does not wait.
func ExampleClient_Background() {
	var c *client.Client // from client.Dial with Kind client.Mobile
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Background(ctx); errors.Is(err, client.ErrBadRequest) {
		fmt.Println("background mode is off for this site:", err)
	}
}

// A chat backend offering a chat only while someone is online.
func ExampleWatchWidget() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	statuses, err := client.WatchWidget(ctx, "https://presence.example.com", "acme", "sales")
	if err != nil {
		log.Fatal(err)
	}
	for s := range statuses {
		fmt.Println(s.Status == client.Online, s.Reason, s.NextChange, s.Transport)
	}
}
