package mqtt

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
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
	// OnAttemptFailed runs when a connection attempt to a broker fails,
	// with the reason (refused credentials, unreachable, TLS).
	OnAttemptFailed func(broker string, err error)
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
		SetConnectionLostHandler(func(_ paho.Client, err error) { o.OnLost(err) }).
		SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
			// Failed closes every attempt (over all brokers), network
			// errors and refused CONNACKs (credentials) alike.
			if f, ok := n.(paho.ConnectionNotificationFailed); ok && o.OnAttemptFailed != nil {
				o.OnAttemptFailed(strings.Join(redactBrokers(o.Brokers), ","), f.Reason)
			}
		})
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

// redactBrokers renders broker URLs without any user information.
func redactBrokers(bs []string) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		if u, err := url.Parse(b); err == nil {
			u.User = nil
			b = u.String()
		}
		out[i] = b
	}
	return out
}

// connLogger reports failed connection attempts: each new reason at once,
// a repeated one at most every `every`, so a wrong password or an
// unreachable broker is visible in the log while paho retries.
type connLogger struct {
	log   *slog.Logger
	every time.Duration

	mu       sync.Mutex
	last     string
	lastAt   time.Time
	failures int
}

func (l *connLogger) failed(broker string, err error) {
	reason := "unknown"
	if err != nil {
		reason = err.Error()
	}
	l.mu.Lock()
	l.failures++
	n := l.failures
	show := reason != l.last || time.Since(l.lastAt) >= l.every
	if show {
		l.last, l.lastAt = reason, time.Now()
	}
	l.mu.Unlock()
	if show {
		l.log.Warn("MQTT connection attempt failed; retrying", "broker", broker, "reason", reason, "failures", n, "hint", connectHint(reason))
	}
}

func (l *connLogger) connected() {
	l.mu.Lock()
	n := l.failures
	l.failures, l.last = 0, ""
	l.mu.Unlock()
	if n > 0 {
		l.log.Info("MQTT connected after failed attempts", "failures", n)
	}
}

// connectHint turns paho's reason into the remedy an operator needs.
func connectHint(reason string) string {
	switch r := strings.ToLower(reason); {
	case strings.Contains(r, "bad user name or password"), strings.Contains(r, "not authorized"):
		return "the broker refused the credentials: check FACEGATE_MQTT_USERNAME and FACEGATE_MQTT_PASSWORD_FILE"
	case strings.Contains(r, "identifier rejected"):
		return "the broker refused the client id: check FACEGATE_MQTT_CLIENT_ID"
	case strings.Contains(r, "certificate"), strings.Contains(r, "tls"), strings.Contains(r, "x509"):
		return "TLS failed: check FACEGATE_MQTT_CA_FILE, FACEGATE_MQTT_CERT_FILE and the broker's name"
	case strings.Contains(r, "connection refused"), strings.Contains(r, "no such host"), strings.Contains(r, "timeout"), strings.Contains(r, "i/o timeout"):
		return "the broker is unreachable: check FACEGATE_MQTT_BROKERS and that the broker runs"
	}
	return ""
}
