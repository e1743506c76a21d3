package mqtt

import (
	"crypto/tls"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// token is the part of a paho token the client uses; fakes implement it.
type token interface {
	Done() <-chan struct{}
	Error() error
}

// conn is the broker connection, a small private interface over paho so
// that unit tests can use an in-memory fake (telegraf style). All methods
// are safe for concurrent use and never block on the network, except
// Disconnect.
type conn interface {
	Connect() token
	Disconnect(quiesce time.Duration)
	Publish(topic string, qos byte, retained bool, payload []byte) token
	Subscribe(topic string, qos byte, cb func(topic string, payload []byte)) token
}

// connOptions is everything a conn factory needs.
type connOptions struct {
	Brokers              []string
	ClientID             string
	Username, Password   string
	TLS                  *tls.Config
	KeepAlive            time.Duration
	ConnectTimeout       time.Duration
	MaxReconnectInterval time.Duration
	WillTopic            string
	WillPayload          []byte
	// OnConnect runs in its own goroutine after each (re)connection.
	OnConnect func()
	// OnLost runs when an established connection drops.
	OnLost func(error)
	// dial, when set, opens the network connection (tests use it to cut
	// the connection uncleanly).
	dial func(uri *url.URL) (net.Conn, error)
}

type connFactory func(connOptions) conn

// newPahoConn is the production factory: a paho client with a persistent
// session (clean session false), automatic reconnection with backoff up to
// MaxReconnectInterval, and the retained last will on the status topic.
func newPahoConn(o connOptions) conn {
	opts := paho.NewClientOptions()
	for _, b := range o.Brokers {
		opts.AddBroker(b)
	}
	opts.SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(o.MaxReconnectInterval).
		SetKeepAlive(o.KeepAlive).
		SetConnectTimeout(o.ConnectTimeout).
		SetWriteTimeout(10*time.Second).
		SetOrderMatters(true). // handlers never block: they only decode and enqueue
		SetBinaryWill(o.WillTopic, o.WillPayload, 1, true).
		SetOnConnectHandler(func(paho.Client) { o.OnConnect() }).
		SetConnectionLostHandler(func(_ paho.Client, err error) { o.OnLost(err) })
	if o.TLS != nil {
		opts.SetTLSConfig(o.TLS)
	}
	if o.dial != nil {
		opts.SetCustomOpenConnectionFn(func(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) { return o.dial(uri) })
	}
	return pahoConn{paho.NewClient(opts)}
}

type pahoConn struct{ c paho.Client }

func (p pahoConn) Connect() token                   { return p.c.Connect() }
func (p pahoConn) Disconnect(quiesce time.Duration) { p.c.Disconnect(uint(quiesce.Milliseconds())) }
func (p pahoConn) Publish(topic string, qos byte, retained bool, payload []byte) token {
	return p.c.Publish(topic, qos, retained, payload)
}
func (p pahoConn) Subscribe(topic string, qos byte, cb func(string, []byte)) token {
	return p.c.Subscribe(topic, qos, func(_ paho.Client, m paho.Message) { cb(m.Topic(), m.Payload()) })
}
