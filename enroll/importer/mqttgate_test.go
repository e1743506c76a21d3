package importer

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
)

// TestMQTTGate: an import through MQTTGate and a real (embedded) broker to
// a responder that verifies each request's signature as the daemon does
// (and refuses replays), with the fake gate's rules behind it; a key the
// gate does not know is refused.
func TestMQTTGate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	broker, err := mqtt.StartEmbedded(ctx, "127.0.0.1:0", mqtt.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	const device = "door-1"
	key, _ := auth.NewKey("k1", []byte("0123456789abcdef0123456789abcdef"))
	ring, _ := auth.NewKeyRing(key)
	verifier, err := auth.NewVerifier(ring, auth.VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	verify := mqtt.VerifyWith(verifier, device)
	topics := mqtt.NewTopics("facegate", device)
	fake := newFakeGate()

	connect := func(id string, onConnect paho.OnConnectHandler) paho.Client {
		o := paho.NewClientOptions().AddBroker(broker.URL()).SetClientID(id).SetCleanSession(true)
		if onConnect != nil {
			o.SetOnConnectHandler(onConnect)
		}
		cl := paho.NewClient(o)
		if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		t.Cleanup(func() { cl.Disconnect(100) })
		return cl
	}
	// The responder: decode, verify, execute, reply (off paho's goroutine).
	gateCl := connect("gate", nil)
	reqs := make(chan []byte, 16)
	if tok := gateCl.Subscribe(topics.EnrollRequest, 1, func(_ paho.Client, m paho.Message) { reqs <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	go func() {
		for {
			var payload []byte
			select {
			case payload = <-reqs:
			case <-ctx.Done():
				return
			}
			var rep mqtt.EnrollReply
			req, err := mqtt.DecodeEnrollRequest(payload, mqtt.Limits{})
			switch {
			case err != nil:
				rep = mqtt.EnrollReply{RequestID: mqtt.RequestIDOf(payload, mqtt.Limits{}), Status: mqtt.ReplyError, Code: mqtt.CodeOf(err), Message: err.Error()}
			case verify(ctx, req) != nil:
				rep = mqtt.EnrollReply{RequestID: req.RequestID, Status: mqtt.ReplyError, Code: mqtt.CodeOf(verify(ctx, req)), Message: "unauthorised"}
			default:
				rep, _ = fake.Do(ctx, *req)
				rep.RequestID = req.RequestID
			}
			b, _ := json.Marshal(rep)
			gateCl.Publish(topics.EnrollReply(rep.RequestID), 1, false, b)
		}
	}()

	dir := t.TempDir()
	writePhoto(t, filepath.Join(dir, "a.jpg"), 1)
	writePhoto(t, filepath.Join(dir, "b1.png"), 2)
	writePhoto(t, filepath.Join(dir, "b2.jpg"), 3)
	rows := csvRows(t, dir, "a,Ann,a.jpg\nb,Bo,b1.png,b2.jpg\n")

	g := NewMQTTGate(key, "facegate", device, 10*time.Second, nil)
	g.Attach(connect("importer", g.OnConnect))
	sum, got, err := importRows(t, ctx, g, rows, Options{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Enrolled != 2 || len(fake.people["b"].photos) != 2 || got["b"].Templates != 2 {
		t.Fatalf("summary %+v, gallery %v", sum, fake.people)
	}
	sum, _, err = importRows(t, ctx, g, rows, Options{})
	if err != nil || !sum.NothingToDo() {
		t.Fatalf("rerun over MQTT: %+v, %v", sum, err)
	}

	other, _ := auth.NewKey("k2", []byte("fedcba9876543210fedcba9876543210"))
	bad := NewMQTTGate(other, "facegate", device, 10*time.Second, nil)
	bad.Attach(connect("intruder", bad.OnConnect))
	if _, err := Run(ctx, bad, rows, Options{}); err == nil || !strings.Contains(err.Error(), "unauthorised") {
		t.Fatalf("unknown key: err = %v, want unauthorised", err)
	}
}
