package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/facegate/facegate/internal/ident"
)

// Config is the MQTT configuration. Environment variable names (envconfig
// style, FACEGATE_MQTT_ prefix) are given in the tags; docs/mqtt.md lists
// them with their defaults.
type Config struct {
	// Brokers are broker URLs tried in order: tcp://host:1883,
	// ssl://host:8883 (also tls:// and mqtts://), ws://host/mqtt, wss://.
	Brokers []string `envconfig:"BROKERS" desc:"broker URLs tried in order: tcp://host:1883, ssl://host:8883 (tls://, mqtts://), ws://host/mqtt, wss://"`
	// DeviceID names this door; it is the second topic level and the
	// base of the client id. [A-Za-z0-9_-], at most 64 bytes.
	DeviceID string `envconfig:"DEVICE_ID" desc:"second topic level and base of the client id: always FACEGATE_DEVICE_ID (set that one)"`
	// Prefix is the first topic level (default "facegate").
	Prefix string `envconfig:"PREFIX" default:"facegate" desc:"first topic level"`
	// ClientID defaults to "facegate-<device_id>". It must be stable: the
	// broker keeps the persistent session (subscriptions, queued QoS 1
	// messages) under it.
	ClientID string `envconfig:"CLIENT_ID" desc:"MQTT client id; keep it stable, the broker keeps the session under it (default: facegate-<device id>)"`

	Username string `envconfig:"USERNAME" desc:"broker user name"`
	// PasswordFile holds the password (first line); preferred over
	// Password, which is only for tests and the embedded broker demo.
	PasswordFile string `envconfig:"PASSWORD_FILE" desc:"file (or credential) whose first line is the broker password"`
	Password     string `envconfig:"-"`

	// CAFile verifies the broker's certificate (system pool when empty);
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CAFile     string `envconfig:"CA_FILE" desc:"CA bundle that verifies the broker (empty: the system pool); needs a TLS broker URL"`
	CertFile   string `envconfig:"CERT_FILE" desc:"client certificate for mutual TLS"`
	KeyFile    string `envconfig:"KEY_FILE" desc:"private key of the client certificate"`
	ServerName string `envconfig:"SERVER_NAME" desc:"TLS server name to verify (empty: the broker URL's host)"`

	KeepAlive            time.Duration `envconfig:"KEEPALIVE" default:"30s" desc:"MQTT keep-alive interval"`
	ConnectTimeout       time.Duration `envconfig:"CONNECT_TIMEOUT" default:"10s" desc:"timeout of one connection attempt"`
	MaxReconnectInterval time.Duration `envconfig:"MAX_RECONNECT_INTERVAL" default:"30s" desc:"longest wait between reconnection attempts"`
	// PublishTimeout is how long a connected client waits for a PUBACK
	// before it publishes an outbox event again (a possible duplicate).
	PublishTimeout time.Duration `envconfig:"PUBLISH_TIMEOUT" default:"30s" desc:"wait for a PUBACK before an outbox event is published again (a possible duplicate)"`
	StatsInterval  time.Duration `envconfig:"STATS_INTERVAL" default:"60s" desc:"how often the stats message is published"`

	// QueueSize bounds each incoming request queue (enroll, claim+feedback).
	QueueSize int `envconfig:"QUEUE_SIZE" default:"64" desc:"bound of each incoming request queue (enroll, claim and feedback)"`
	Limits    Limits

	// OutboxDir holds the durable event outbox (required).
	OutboxDir      string `envconfig:"OUTBOX_DIR" desc:"durable event outbox folder (default: FACEGATE_STATE_DIR/outbox)"`
	OutboxMaxBytes int64  `envconfig:"OUTBOX_MAX_BYTES" default:"67108864" desc:"outbox size cap in bytes; the oldest events go first"`

	// HADiscovery publishes Home Assistant discovery configs on connect
	// under HADiscoveryPrefix (default "homeassistant").
	HADiscovery       bool   `envconfig:"HA_DISCOVERY" default:"true" desc:"publish Home Assistant discovery configs on connect"`
	HADiscoveryPrefix string `envconfig:"HA_DISCOVERY_PREFIX" default:"homeassistant" desc:"Home Assistant discovery topic prefix"`
	// Version is reported in the Home Assistant device info.
	Version string `envconfig:"-"`

	// EventImages includes the aligned face crop (base64 JPEG) in events.
	// Off by default: events are an access log, not a camera feed.
	EventImages bool `envconfig:"EVENT_IMAGES" desc:"include the aligned face crop (base64 JPEG) in events (privacy: off by default)"`

	// AuthenticateAll also requires signed claims and feedback (enroll
	// requests are always authenticated).
	AuthenticateAll bool `envconfig:"AUTHENTICATE_ALL" desc:"also require signed claims and feedback (enroll requests are always signed)"`
	// InsecureNoAuth accepts unsigned enroll requests when no
	// authenticator is configured. Demo and tests only.
	InsecureNoAuth bool `envconfig:"INSECURE_NO_AUTH" desc:"accept unsigned enroll requests when no key ring is set: demos and tests only"`
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "facegate"
	}
	if c.ClientID == "" {
		c.ClientID = "facegate-" + c.DeviceID
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.MaxReconnectInterval == 0 {
		c.MaxReconnectInterval = 30 * time.Second
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = 60 * time.Second
	}
	if c.QueueSize == 0 {
		c.QueueSize = 64
	}
	if c.OutboxMaxBytes == 0 {
		c.OutboxMaxBytes = 64 << 20
	}
	if c.HADiscoveryPrefix == "" {
		c.HADiscoveryPrefix = "homeassistant"
	}
	c.Limits = c.Limits.withDefaults()
}

// topicLevel accepts a topic level without wildcards or separators.
func topicLevel(name, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", name)
	}
	if len(v) > ident.MaxIDLen {
		return fmt.Errorf("%s %q: longer than %d bytes", name, v, ident.MaxIDLen)
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%s %q: only A-Z a-z 0-9 _ - allowed (it is a topic level)", name, v)
		}
	}
	return nil
}

// Validate fills defaults and rejects bad values, naming the variable,
// before anything is opened.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("FACEGATE_MQTT_BROKERS: at least one broker URL is required"))
	}
	for _, b := range c.Brokers {
		u, err := url.Parse(b)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("FACEGATE_MQTT_BROKERS: %q: %w", b, err))
		case !validScheme(u.Scheme):
			errs = append(errs, fmt.Errorf("FACEGATE_MQTT_BROKERS: %q: scheme must be tcp, ssl, tls, mqtts, ws or wss", b))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("FACEGATE_MQTT_BROKERS: %q: no host", b))
		}
	}
	if err := topicLevel("FACEGATE_MQTT_DEVICE_ID", c.DeviceID); err != nil {
		errs = append(errs, err)
	}
	for _, level := range strings.Split(c.Prefix, "/") {
		if err := topicLevel("FACEGATE_MQTT_PREFIX", level); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if err := topicLevel("FACEGATE_MQTT_HA_DISCOVERY_PREFIX", c.HADiscoveryPrefix); err != nil {
		errs = append(errs, err)
	}
	if len(c.ClientID) > 128 {
		errs = append(errs, errors.New("FACEGATE_MQTT_CLIENT_ID: longer than 128 bytes"))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("FACEGATE_MQTT_PASSWORD_FILE: set either a password file or a password, not both"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("FACEGATE_MQTT_CERT_FILE and FACEGATE_MQTT_KEY_FILE must be set together"))
	}
	if c.TLSFilesUnused() {
		errs = append(errs, errors.New("FACEGATE_MQTT_CA_FILE/CERT_FILE are set but no broker URL uses TLS (ssl://, mqtts://, wss://)"))
	}
	if c.KeepAlive < time.Second {
		errs = append(errs, errors.New("FACEGATE_MQTT_KEEPALIVE: at least 1s"))
	}
	if c.StatsInterval < time.Second {
		errs = append(errs, errors.New("FACEGATE_MQTT_STATS_INTERVAL: at least 1s"))
	}
	if c.QueueSize < 1 || c.QueueSize > 10000 {
		errs = append(errs, errors.New("FACEGATE_MQTT_QUEUE_SIZE: must be 1..10000"))
	}
	if c.OutboxDir == "" {
		errs = append(errs, errors.New("FACEGATE_MQTT_OUTBOX_DIR is required (the durable event outbox)"))
	}
	if c.OutboxMaxBytes < 64<<10 {
		errs = append(errs, errors.New("FACEGATE_MQTT_OUTBOX_MAX_BYTES: at least 65536"))
	}
	return errors.Join(errs...)
}

func validScheme(s string) bool {
	switch s {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps", "ws", "wss":
		return true
	}
	return false
}

// SecureScheme reports whether paho dials a broker URL scheme over TLS.
func SecureScheme(s string) bool {
	switch s {
	case "ssl", "tls", "mqtts", "tcps", "wss":
		return true
	}
	return false
}

// password returns the configured password, reading PasswordFile.
func (c *Config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("read FACEGATE_MQTT_PASSWORD_FILE: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// TLSConfig builds the TLS configuration from CAFile, CertFile, KeyFile and
// ServerName, or nil when no broker URL needs TLS (ssl, tls, mqtts, tcps,
// wss) and no TLS file is set. The client commands use it too.
func (c *Config) TLSConfig() (*tls.Config, error) {
	need := c.CAFile != "" || c.CertFile != ""
	for _, b := range c.Brokers {
		if u, err := url.Parse(b); err == nil && SecureScheme(u.Scheme) {
			need = true
		}
	}
	if !need {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read FACEGATE_MQTT_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("FACEGATE_MQTT_CA_FILE %s: no PEM certificate", c.CAFile)
		}
		t.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate FACEGATE_MQTT_CERT_FILE/KEY_FILE: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// TLSFilesUnused reports a CA or client certificate set while no broker URL
// uses TLS: paho dials tcp:// and ws:// in the clear whatever TLS settings
// it is given, so the files would be a false comfort.
func (c *Config) TLSFilesUnused() bool {
	if c.CAFile == "" && c.CertFile == "" || len(c.Brokers) == 0 {
		return false
	}
	for _, b := range c.Brokers {
		if u, err := url.Parse(b); err == nil && SecureScheme(u.Scheme) {
			return false
		}
	}
	return true
}

// PlaintextCredentialsTo returns the first non-loopback broker reached
// without TLS, for a warning when a password would cross the network in
// clear.
func (c *Config) PlaintextCredentialsTo() string {
	if c.Username == "" && c.Password == "" && c.PasswordFile == "" {
		return ""
	}
	for _, b := range c.Brokers {
		u, err := url.Parse(b)
		if err != nil || SecureScheme(u.Scheme) {
			continue
		}
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			continue
		}
		return b
	}
	return ""
}

// Topics are the topic names of one device.
type Topics struct {
	Base, Status, Events, Stats, Claim, EnrollRequest, Feedback string
	Challenge                                                   string // challenges to the person at the door
	enrollReply                                                 string
}

// NewTopics builds the topic names under <prefix>/<device_id>/.
func NewTopics(prefix, deviceID string) Topics {
	base := prefix + "/" + deviceID
	return Topics{
		Base:          base,
		Status:        base + "/status",
		Events:        base + "/events",
		Stats:         base + "/stats",
		Claim:         base + "/claim",
		EnrollRequest: base + "/enroll/request",
		Feedback:      base + "/feedback",
		Challenge:     base + "/challenge",
		enrollReply:   base + "/enroll/reply/",
	}
}

// EnrollReply returns the reply topic for a request id; requests whose id
// could not be read are answered on enroll/reply/invalid.
func (t Topics) EnrollReply(requestID string) string {
	if requestID == "" {
		requestID = "invalid"
	}
	return t.enrollReply + requestID
}
