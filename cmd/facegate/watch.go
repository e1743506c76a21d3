package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/mqtt"
)

// cmdWatch prints a gate's events (and, with -stats, its stats) as they
// arrive, one JSON line each.
func cmdWatch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	withStats := fs.Bool("stats", false, "also print stats messages")
	count := fs.Int("count", 0, "exit after this many events (0 = run until interrupted)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	topics := mqtt.NewTopics(cf.prefix, cf.device)
	lines := make(chan string, 1024)
	var lost atomic.Uint64
	handler := func(_ paho.Client, m paho.Message) {
		select {
		case lines <- m.Topic() + " " + string(m.Payload()):
		default:
			if n := lost.Add(1); n == 1 || n%100 == 0 {
				slog.Warn("output too slow: messages not printed", "lost", n)
			}
		}
	}
	subs := map[string]byte{topics.Events: 1, topics.Status: 1}
	if *withStats {
		subs[topics.Stats] = 0
	}
	// Subscribed on every connection, not once: the session is clean, so
	// after a broker restart the subscriptions must be made again.
	subscribed := make(chan error, 1)
	onConnect := func(cl paho.Client) {
		t := cl.SubscribeMultiple(subs, handler)
		go func() {
			var err error
			if !t.WaitTimeout(10 * time.Second) {
				err = errors.New("timed out")
			} else {
				err = t.Error()
			}
			if err != nil {
				slog.Warn("subscribe failed", "err", err)
			}
			select {
			case subscribed <- err:
			default:
			}
		}()
	}
	cl, err := cf.connect("facegate-watch", onConnect)
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	select {
	case err := <-subscribed:
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	case <-time.After(15 * time.Second):
		return fmt.Errorf("subscribe: no answer from the broker")
	}
	events := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-lines:
			fmt.Fprintln(stdout, l)
			if strings.HasPrefix(l, topics.Events+" ") {
				events++
				if *count > 0 && events >= *count {
					return nil
				}
			}
		}
	}
}
