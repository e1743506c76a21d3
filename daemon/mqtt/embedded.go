package mqtt

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// EmbeddedOptions configure the embedded broker.
type EmbeddedOptions struct {
	// Users maps user names to passwords. When empty, only clients
	// connecting from a loopback address are accepted (any credentials);
	// when set, every client must present a matching user and password
	// and may connect from anywhere.
	Users map[string]string
	// TLS, when set, makes the listener TLS-only (set ClientAuth to
	// tls.RequireAndVerifyClientCert for client certificates).
	TLS    *tls.Config
	Logger *slog.Logger
	// MaxPacket is the largest MQTT packet the broker reads, checked from
	// the fixed header before the packet is read into memory (default
	// MaxPacketFor(DefaultLimits)): a larger publish closes the client's
	// connection without costing the gate its memory.
	MaxPacket uint32
}

// MaxPacketFor is the packet size limit that fits requests within lim: the
// largest payload plus room for the topic and headers.
func MaxPacketFor(lim Limits) uint32 {
	return uint32(lim.withDefaults().MaxPayload) + 64<<10
}

// Embedded is an in-process MQTT broker (mochi-mqtt) for single-door
// sites and the demo: the device is the broker.
type Embedded struct {
	srv  *mochi.Server
	tcp  *listeners.TCP
	tls  bool
	once sync.Once
	err  error
	done chan struct{}
}

// Addr returns the address the broker listens on (the real port when
// started on port 0).
func (e *Embedded) Addr() string { return e.tcp.Address() }

// URL returns the broker's URL: tcp://, or ssl:// with TLS.
func (e *Embedded) URL() string {
	if e.tls {
		return "ssl://" + e.Addr()
	}
	return "tcp://" + e.Addr()
}

// Close stops the broker and disconnects its clients; it may be called
// more than once.
func (e *Embedded) Close() error {
	e.once.Do(func() {
		e.err = e.srv.Close()
		close(e.done)
	})
	return e.err
}

// Done is closed when the broker has stopped.
func (e *Embedded) Done() <-chan struct{} { return e.done }

// StartEmbedded starts a broker with a TCP listener on addr (for example
// 127.0.0.1:0 or :1883) and stops it when ctx is cancelled. Retained
// messages and sessions are kept in memory only.
func StartEmbedded(ctx context.Context, addr string, o EmbeddedOptions) (*Embedded, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "mqtt/broker")
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = o.MaxPacket
	if caps.MaximumPacketSize == 0 {
		caps.MaximumPacketSize = MaxPacketFor(DefaultLimits)
	}
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: log, Capabilities: caps})
	if err := srv.AddHook(&authHook{users: o.Users, log: log}, nil); err != nil {
		return nil, fmt.Errorf("embedded broker: auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr, TLSConfig: o.TLS})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("embedded broker: listen on %s: %w", addr, err)
	}
	e := &Embedded{srv: srv, tcp: tcp, tls: o.TLS != nil, done: make(chan struct{})}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("embedded broker: serve: %w", err)
	}
	log.Info("embedded MQTT broker listening", "addr", e.Addr(), "loopback_only", len(o.Users) == 0)
	go func() {
		select {
		case <-ctx.Done():
			e.Close()
		case <-e.done:
		}
	}()
	return e, nil
}

// authHook accepts loopback clients when no users are configured, else
// clients with a matching user name and password; ACLs allow everything
// to authenticated clients.
type authHook struct {
	mochi.HookBase
	users map[string]string
	log   *slog.Logger
}

func (h *authHook) ID() string { return "facegate-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, []byte{b})
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		host, _, err := net.SplitHostPort(cl.Net.Remote)
		ip := net.ParseIP(host)
		if err == nil && ip != nil && ip.IsLoopback() {
			return true
		}
		h.log.Warn("refused non-loopback client (no users configured)", "remote", cl.Net.Remote)
		return false
	}
	want, ok := h.users[string(pk.Connect.Username)]
	if ok && subtle.ConstantTimeCompare([]byte(want), pk.Connect.Password) == 1 {
		return true
	}
	h.log.Warn("refused client: bad user name or password", "remote", cl.Net.Remote, "username", string(pk.Connect.Username))
	return false
}

func (h *authHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }
