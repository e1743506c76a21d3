package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is where the metrics are served unless configured: loopback,
// because the endpoints are not authenticated.
const DefaultAddr = "127.0.0.1:9464"

// ErrAddr is wrapped by every invalid listen address.
var ErrAddr = errors.New("invalid metrics address")

// ValidateAddr checks a host:port listen address (host may be empty for
// every interface, port 0 picks a free one).
func ValidateAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w %q: %v", ErrAddr, addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%w %q: port %q is not a number in 0..65535", ErrAddr, addr, port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("%w %q: host %q is neither an IP address nor a host name", ErrAddr, addr, host)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// IsLoopback reports whether addr listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler serves /metrics (the Prometheus text format), /healthz (200
// while the process serves) and /readyz (200 once Ready, else 503 with
// the reason).
func Handler(m *Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg, // promhttp_metric_handler_errors_total
		ErrorLog:            slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ok, why := m.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "facegate: /metrics /healthz /readyz")
	})
	return mux
}

// Server serves Handler on a listen address.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
	done chan error
}

// ShutdownTimeout bounds how long a stopping server waits for scrapes in
// progress.
const ShutdownTimeout = 5 * time.Second

// NewServer listens on addr at once (so a taken port is known before the
// gate starts, and Addr is the real address when the port is 0). It warns
// when addr is not loopback: the endpoints are not authenticated.
func NewServer(addr string, m *Metrics, log *slog.Logger) (*Server, error) {
	if err := ValidateAddr(addr); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if !IsLoopback(addr) {
		log.Warn("metrics listen beyond loopback: /metrics, /healthz and /readyz are not authenticated; firewall the port or put a proxy with authentication in front", "addr", ln.Addr().String())
	}
	return &Server{
		ln:  ln,
		log: log,
		srv: &http.Server{
			Handler:           Handler(m),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Start serves in the background until Shutdown.
func (s *Server) Start() {
	if s.done != nil {
		return
	}
	s.done = make(chan error, 1)
	s.log.Info("metrics listening", "addr", s.Addr(), "endpoints", "/metrics /healthz /readyz")
	go func() {
		err := s.srv.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
}

// Shutdown stops the server, waiting for scrapes in progress until ctx
// ends, and returns the error that stopped serving, if any.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.done == nil {
		return s.ln.Close()
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	if serr := <-s.done; serr != nil {
		return fmt.Errorf("metrics: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}

// Run serves until ctx ends, then shuts down within ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	s.Start()
	select {
	case <-ctx.Done():
	case err := <-s.done:
		s.done <- err // for Shutdown
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}
