package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/site"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "natsmqtt:", err)
		os.Exit(1)
	}
}

func run() error {
	port := flag.Int("port", 4222, "NATS client port (-1: random)")
	mqttPort := flag.Int("mqtt-port", 1883, "MQTT port")
	store := flag.String("store", "", "JetStream store directory (required)")
	ackWait := flag.Duration("ack-wait", 2*time.Second, "MQTT AckWait: redelivery of an unacknowledged QoS 1 message")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := site.StartServer(site.ServerConfig{
		Name: "natsmqtt", Port: *port, MQTTPort: *mqttPort, StoreDir: *store,
		MaxPayload: int32(mqtt.MaxPacketFor(mqtt.DefaultLimits)), MQTTAckWait: *ackWait, Logger: logger,
	})
	if err != nil {
		return err
	}
	logger.Warn("serving MQTT", "port", *mqttPort)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}
