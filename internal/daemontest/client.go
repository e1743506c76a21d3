package daemontest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
)

// Client is a clean-session MQTT client of a gate's broker that sends
// signed enrolment requests and routes each reply to whoever expects its
// request id.
type Client struct {
	Device string
	Topics mqtt.Topics
	Paho   paho.Client

	mu      sync.Mutex
	replies map[string]chan mqtt.EnrollReply
}

// Connect connects to the broker at 127.0.0.1:port as clientID and
// subscribes (QoS 1) to device's enrolment replies, then to each topic of
// extra with its handler.
func Connect(port int, clientID, device string, extra map[string]paho.MessageHandler) (*Client, error) {
	c := &Client{Device: device, Topics: mqtt.NewTopics("facegate", device), replies: map[string]chan mqtt.EnrollReply{}}
	opts := paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).SetClientID(clientID).
		SetCleanSession(true).SetAutoReconnect(false)
	c.Paho = paho.NewClient(opts)
	if tok := c.Paho.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect to 127.0.0.1:%d: %v", port, tok.Error())
	}
	prefix := c.Topics.Base + "/enroll/reply/"
	subs := []struct {
		topic string
		h     paho.MessageHandler
	}{{prefix + "+", func(_ paho.Client, m paho.Message) {
		var r mqtt.EnrollReply
		if json.Unmarshal(m.Payload(), &r) != nil {
			return
		}
		c.mu.Lock()
		ch := c.replies[strings.TrimPrefix(m.Topic(), prefix)]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- r:
			default:
			}
		}
	}}}
	for topic, h := range extra {
		subs = append(subs, struct {
			topic string
			h     paho.MessageHandler
		}{topic, h})
	}
	for _, s := range subs {
		if tok := c.Paho.Subscribe(s.topic, 1, s.h); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			c.Paho.Disconnect(50)
			return nil, fmt.Errorf("subscribe %s: %v", s.topic, tok.Error())
		}
	}
	return c, nil
}

// Disconnect disconnects the client if it is connected.
func (c *Client) Disconnect(quiesce uint) {
	if c != nil && c.Paho != nil && c.Paho.IsConnected() {
		c.Paho.Disconnect(quiesce)
	}
}

// Expect registers interest in the reply to id; call it before the
// request is sent. The channel holds up to 4 replies.
func (c *Client) Expect(id string) chan mqtt.EnrollReply {
	ch := make(chan mqtt.EnrollReply, 4)
	c.mu.Lock()
	c.replies[id] = ch
	c.mu.Unlock()
	return ch
}

// Publish publishes payload on the device's enrolment request topic at
// QoS 1 and waits for the broker's PUBACK.
func (c *Client) Publish(payload []byte) error {
	if tok := c.Paho.Publish(c.Topics.EnrollRequest, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publish: %v", tok.Error())
	}
	return nil
}

// Send publishes payload and waits up to wait for the reply to id; false
// when none came.
func (c *Client) Send(id string, payload []byte, wait time.Duration) (mqtt.EnrollReply, bool, error) {
	ch := c.Expect(id)
	if err := c.Publish(payload); err != nil {
		return mqtt.EnrollReply{}, false, err
	}
	select {
	case r := <-ch:
		return r, true, nil
	case <-time.After(wait):
		return mqtt.EnrollReply{}, false, nil
	}
}

// Signed signs r for the device with key at time at (a random request id
// when r has none) and returns its JSON.
func (c *Client) Signed(r *mqtt.EnrollRequest, key auth.Key, at time.Time) ([]byte, error) {
	if r.RequestID == "" {
		r.RequestID = RandomHex(8)
	}
	a, err := mqtt.Sign(key, r, c.Device, at)
	if err != nil {
		return nil, fmt.Errorf("sign %s %s: %w", r.Op, r.RequestID, err)
	}
	r.Auth = a
	return json.Marshal(r)
}

// Request signs r with key now, sends it and waits up to wait for its
// reply; false when none came.
func (c *Client) Request(r *mqtt.EnrollRequest, key auth.Key, wait time.Duration) (mqtt.EnrollReply, bool, error) {
	b, err := c.Signed(r, key, time.Now())
	if err != nil {
		return mqtt.EnrollReply{}, false, err
	}
	return c.Send(r.RequestID, b, wait)
}
