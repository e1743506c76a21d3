package site

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// User is a NATS user whose password is read from a file (a systemd
// credential), never from the environment.
type User struct {
	Name         string
	PasswordFile string
	// Gate, when set, limits the user to what that gate needs
	// (GatePermissions); empty: full access (operators, tools).
	Gate string
}

// ServerConfig configures StartServer; see docs/site.md for a site's
// three-node layout.
type ServerConfig struct {
	Name     string // unique server name in the cluster (required)
	Host     string // client listener host (default 127.0.0.1)
	Port     int    // client port (default 4222; -1: random)
	StoreDir string // JetStream storage (required)
	// Cluster: set ClusterName to join a JetStream cluster; Routes are the
	// nats-route://host:port URLs of the other members (listing oneself is
	// harmless, so all members can share one list).
	ClusterName string
	ClusterHost string
	ClusterPort int // -1: random
	Routes      []string
	// ClusterUser and ClusterPasswordFile authenticate routes (both or
	// neither).
	ClusterUser         string
	ClusterPasswordFile string
	// Users: when empty, clients need no password (loopback tests only).
	Users []User
	// TLS for clients and routes: certificate, key and the CA that signed
	// the peers' certificates (all three or none).
	CertFile, KeyFile, CAFile string
	// MQTTPort enables the MQTT 3.1.1 listener (0: off, -1: random).
	MQTTPort int
	// MQTTAckWait is how long the MQTT listener waits for a subscriber's
	// PUBACK before it redelivers a QoS 1 message; a reconnect does not
	// redeliver sooner (0: the server's 30 s).
	MQTTAckWait time.Duration
	// MaxPayload is the largest message in bytes, NATS and MQTT alike (0:
	// the server's 1 MiB). A larger MQTT publish only drops the publisher's
	// connection, so an MQTT listener that takes enrolment requests needs
	// mqtt.MaxPacketFor(limits): 8 MiB + 64 KiB by default.
	MaxPayload int32
	// MaxStore bounds JetStream file storage in bytes (0: the server's
	// default, 75% of the disk).
	MaxStore int64
	Logger   *slog.Logger
}

// Server is an embedded nats-server.
type Server struct {
	*server.Server
}

// StartServer starts a nats-server with JetStream and waits until it
// accepts connections (10 s at most).
func StartServer(cfg ServerConfig) (*Server, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, fmt.Errorf("start nats %s: %w", cfg.Name, err)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats %s: %w", cfg.Name, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s.SetLoggerV2(natsLogger{logger.With("component", "nats-server", "server", cfg.Name)}, false, false, false)
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("start nats %s: not ready after 10 s", cfg.Name)
	}
	return &Server{s}, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if len(s) < 16 {
		return "", fmt.Errorf("%s: secret of %d bytes, want at least 16", path, len(s))
	}
	return s, nil
}

func (cfg ServerConfig) options() (*server.Options, error) {
	if cfg.Name == "" || cfg.StoreDir == "" {
		return nil, errors.New("server name and store directory are required")
	}
	o := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
		// A removal must not wait for a slow consumer; gates reconnect.
		WriteDeadline:     5 * time.Second,
		JetStreamMaxStore: cfg.MaxStore,
		MaxPayload:        cfg.MaxPayload,
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 4222
	}
	for _, u := range cfg.Users {
		pw, err := readSecret(u.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		user := &server.User{Username: u.Name, Password: pw}
		if u.Gate != "" {
			user.Permissions = GatePermissions(u.Gate)
		}
		o.Users = append(o.Users, user)
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") || (cfg.CertFile == "") != (cfg.CAFile == "") {
		return nil, errors.New("TLS needs a certificate, its key and a CA file")
	}
	if cfg.CertFile != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, CaFile: cfg.CAFile})
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		o.TLSConfig, o.TLS, o.TLSTimeout = tc, true, 2
	}
	if cfg.ClusterName != "" {
		o.Cluster.Name = cfg.ClusterName
		o.Cluster.Host = cfg.ClusterHost
		if o.Cluster.Host == "" {
			o.Cluster.Host = o.Host
		}
		o.Cluster.Port = cfg.ClusterPort
		if (cfg.ClusterUser == "") != (cfg.ClusterPasswordFile == "") {
			return nil, errors.New("cluster user and password file go together")
		}
		if cfg.ClusterUser != "" {
			pw, err := readSecret(cfg.ClusterPasswordFile)
			if err != nil {
				return nil, fmt.Errorf("cluster password: %w", err)
			}
			o.Cluster.Username, o.Cluster.Password = cfg.ClusterUser, pw
		}
		if cfg.CertFile != "" {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, CaFile: cfg.CAFile, Verify: true})
			if err != nil {
				return nil, fmt.Errorf("cluster TLS: %w", err)
			}
			o.Cluster.TLSConfig, o.Cluster.TLSTimeout = tc, 2
		}
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r, err)
			}
			if cfg.ClusterUser != "" {
				u.User = url.UserPassword(o.Cluster.Username, o.Cluster.Password)
			}
			o.Routes = append(o.Routes, u)
		}
	}
	if cfg.MQTTPort != 0 {
		o.MQTT.Host, o.MQTT.Port = o.Host, cfg.MQTTPort
		o.MQTT.AckWait = cfg.MQTTAckWait
	}
	return o, nil
}

// GatePermissions is what a gate's NATS user may do: append gallery
// changes, read the gallery stream through an ordered consumer, append its
// own events (and read its own last one), and write its own status key.
// It cannot delete or purge streams, create durable consumers, or write
// another gate's events or status.
func GatePermissions(gate string) *server.Permissions {
	js := "$JS.API."
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			GallerySubject,
			EventsSubjectPrefix + gate,
			"$KV." + StatusBucket + "." + gate,
			js + "INFO",
			js + "STREAM.INFO.*",
			js + "STREAM.NAMES",
			js + "CONSUMER.CREATE." + GalleryStream + ".>",
			js + "CONSUMER.DELETE." + GalleryStream + ".>",
			js + "CONSUMER.INFO." + GalleryStream + ".>",
			js + "CONSUMER.MSG.NEXT." + GalleryStream + ".>",
			js + "DIRECT.GET." + EventsStream + "." + EventsSubjectPrefix + gate,
			js + "STREAM.MSG.GET." + EventsStream,
			js + "DIRECT.GET.KV_" + StatusBucket + ".>",
			js + "STREAM.MSG.GET.KV_" + StatusBucket,
			"$JS.FC.>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// ClientConfig configures Connect.
type ClientConfig struct {
	URLs         []string // nats:// or tls:// URLs of any cluster members
	Name         string   // connection name (the gate id)
	User         string
	PasswordFile string
	CAFile       string // TLS: the CA of the servers' certificates
	Logger       *slog.Logger
}

// Connect connects to the site's NATS and keeps reconnecting forever, also
// when no server answers at start (the gate decides without NATS).
func Connect(cfg ClientConfig) (*nats.Conn, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("nats connect: no server URL")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "nats-client")
	var failed lastReason
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { logger.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("nats reconnected", "server", c.ConnectedUrlRedacted()) }),
		// Tried every 250 ms while refused (wrong password, unknown CA):
		// logged when the reason changes, not at every try.
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if failed.changed(err) {
				logger.Warn("nats connection attempt failed", "err", err)
			}
		}),
	}
	if cfg.User != "" {
		pw, err := readSecret(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("nats connect: password: %w", err)
		}
		opts = append(opts, nats.UserInfo(cfg.User, pw))
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("nats connect: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats connect: no certificate in %s", cfg.CAFile)
		}
		opts = append(opts, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect %s: %w", strings.Join(cfg.URLs, ","), err)
	}
	return nc, nil
}

// lastReason remembers the last connection error's text.
type lastReason struct {
	mu   sync.Mutex
	last string
}

func (l *lastReason) changed(err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err.Error() == l.last {
		return false
	}
	l.last = err.Error()
	return true
}

// natsLogger routes the server's log to slog.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(f string, a ...any) { n.l.Info(fmt.Sprintf(f, a...)) }
func (n natsLogger) Warnf(f string, a ...any)   { n.l.Warn(fmt.Sprintf(f, a...)) }
func (n natsLogger) Fatalf(f string, a ...any)  { n.l.Error(fmt.Sprintf(f, a...)) }
func (n natsLogger) Errorf(f string, a ...any)  { n.l.Error(fmt.Sprintf(f, a...)) }
func (n natsLogger) Debugf(f string, a ...any)  { n.l.Debug(fmt.Sprintf(f, a...)) }
func (n natsLogger) Tracef(f string, a ...any)  { n.l.Debug(fmt.Sprintf(f, a...)) }
