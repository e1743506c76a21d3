package daemon

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/site"
)

// siteGate is this gate's part in a site (docs/site.md): it publishes the
// enrolments accepted here to the gallery stream, applies everyone's
// changes to the local gallery (site.Replicator into Gallery.SiteApplier),
// forwards access events to the site's event stream (site.Forwarder) and
// reports refused changes there. Decisions never wait for it: they read
// only the local gallery.
type siteGate struct {
	gate    string
	log     *slog.Logger
	keys    []store.Key // the site's key ring: keys[0] seals
	nc      *nats.Conn
	js      jetstream.JetStream
	pub     *site.Publisher
	rep     *site.Replicator
	fwd     *site.Forwarder
	ensure  *site.StreamOptions // create the streams at start (FACEGATE_SITE_ENSURE_STREAMS)
	started time.Time

	retired map[string]uint64 // operator keys retired at a stream sequence: no new requests

	mu       sync.Mutex // one enrolment at a time at this gate
	caughtUp atomic.Bool
	dirty    atomic.Bool // replicated changes since the gallery statistics were estimated
}

// SiteOutboxDir is the folder of the events queued for the site.
func SiteOutboxDir(stateDir string) string { return filepath.Join(stateDir, "site-outbox") }

// siteKeyRing loads FACEGATE_SITE_KEY as GalleryKeys loads the gallery's.
func siteKeyRing(nameOrPath string) ([]store.Key, error) {
	return storeKeyRing("FACEGATE_SITE_KEY", nameOrPath)
}

// LoadSiteGateKeys reads FACEGATE_SITE_GATE_KEYS (a file or credential).
func LoadSiteGateKeys(nameOrPath string) (site.GateKeys, error) {
	path, err := Resolve(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("FACEGATE_SITE_GATE_KEYS: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("FACEGATE_SITE_GATE_KEYS: %w", err)
	}
	keys, err := site.ParseGateKeys(b)
	if err != nil {
		return nil, fmt.Errorf("FACEGATE_SITE_GATE_KEYS %s: %w", path, err)
	}
	return keys, nil
}

// ErrKeyRetired: a change signed with a retired or revoked operator key
// (FACEGATE_SITE_OPERATOR_KEYS_UNTIL) after the last sequence it may sign.
var ErrKeyRetired = errors.New("operator key retired")

// SiteVerifier checks an operator's request signature as the accepting
// gate did (auth.CheckSignature with the enrollment key ring: Ed25519 for
// an ed25519 key, HMAC-SHA256 for an HMAC key), without auth.Verifier's
// clock window and nonce journal: the replicator checks the timestamp
// against the time the stream stored the change and the stream
// deduplicates change ids (docs/site.md). With ed25519Only
// (FACEGATE_SITE_OPERATOR_KEYS=ed25519) a change signed with an HMAC key
// is refused (auth.ErrHMACRefused): every gate holds the HMAC secrets, so
// such a signature may come from a compromised gate.
func SiteVerifier(ring *auth.KeyRing, ed25519Only bool) site.Verifier {
	return NewSiteVerifier(ring, ed25519Only, nil)
}

// NewSiteVerifier is SiteVerifier with retired keys: until maps a key id
// to the last gallery stream sequence it may have signed
// (FACEGATE_SITE_OPERATOR_KEYS_UNTIL). A change signed with such a key is
// checked as usual up to that sequence, also when it is an HMAC key in an
// Ed25519-only site (the history signed before the key was retired), and
// refused after it (ErrKeyRetired). The sequence is the stream's, which no
// gate chooses; without one (Verify) a retired key is refused.
func NewSiteVerifier(ring *auth.KeyRing, ed25519Only bool, until map[string]uint64) site.SeqVerifier {
	return siteVerifier{ring: ring, ed25519Only: ed25519Only, until: until}
}

type siteVerifier struct {
	ring        *auth.KeyRing
	ed25519Only bool
	until       map[string]uint64
}

func (v siteVerifier) Verify(c *site.Change) error { return v.VerifyAt(math.MaxUint64, c) }

func (v siteVerifier) VerifyAt(seq uint64, c *site.Change) error {
	only := v.ed25519Only
	if last, retired := v.until[c.Request.KeyID]; retired {
		if seq > last {
			return fmt.Errorf("%w: key %q signs changes up to sequence %d, this one is at %d", ErrKeyRetired, c.Request.KeyID, last, seq)
		}
		only = false
	}
	return auth.CheckSignature(v.ring,
		auth.Fields{KeyID: c.Request.KeyID, Timestamp: c.Request.TS, Nonce: c.Request.Nonce, Signature: c.Request.Sig},
		auth.Request{Operation: c.Request.Operation, RequestID: c.Request.RequestID, Body: c.Request.Body},
		only)
}

// checkSiteOperatorKeys refuses, in a site accepting only Ed25519
// operator keys, an enrollment key ring that would let this gate accept
// requests the other gates refuse (HMAC keys, unless retired: listed in
// until) or sign requests itself (Ed25519 private keys): a gate holds only
// operators' public keys.
func checkSiteOperatorKeys(ring *auth.KeyRing, ed25519Only bool, until map[string]uint64) error {
	if !ed25519Only {
		return nil
	}
	var live []string
	for _, id := range ring.IDsOf(auth.KeyHMAC) {
		if _, retired := until[id]; !retired {
			live = append(live, id)
		}
	}
	if len(live) > 0 {
		return fmt.Errorf("FACEGATE_ENROLL_KEYS: HMAC keys %v in a site with FACEGATE_SITE_OPERATOR_KEYS=ed25519: the other gates would refuse what they sign; give operators Ed25519 keys (facegate site keygen -operator) and list only their ed25519: public lines (or retire the HMAC keys with FACEGATE_SITE_OPERATOR_KEYS_UNTIL), or set FACEGATE_SITE_OPERATOR_KEYS=any", live)
	}
	if ids := ring.IDsOf(auth.KeyEd25519Private); len(ids) > 0 {
		return fmt.Errorf("FACEGATE_ENROLL_KEYS: Ed25519 private keys %v on a gate: a gate holds only operators' public keys (ed25519:<id>:<public key>); keep the private key in the operator's tool", ids)
	}
	return nil
}

// openSite joins the site when FACEGATE_SITE_NATS_URLS is set: keys
// first, then a NATS connection that keeps retrying in the background (a
// gate starts and decides without NATS).
func (s *Service) openSite() error {
	cfg := s.cfg
	if !cfg.SiteConfig.Enabled() {
		return nil
	}
	log := s.log.With("component", "site")
	sg := &siteGate{gate: cfg.DeviceID, log: log, started: time.Now()}
	gkPath, err := Resolve(cfg.SiteGateKey)
	if err != nil {
		return fmt.Errorf("FACEGATE_SITE_GATE_KEY: %w", err)
	}
	gateKey, err := site.LoadGateKey(gkPath)
	if err != nil {
		return fmt.Errorf("FACEGATE_SITE_GATE_KEY: %w", err)
	}
	gates, err := LoadSiteGateKeys(cfg.SiteGateKeys)
	if err != nil {
		return err
	}
	if pub, ok := gates[cfg.DeviceID]; !ok || !pub.Equal(gateKey.Public().(ed25519.PublicKey)) {
		return fmt.Errorf("FACEGATE_SITE_GATE_KEYS: no line for %q with the public key of FACEGATE_SITE_GATE_KEY: the other gates would refuse its changes", cfg.DeviceID)
	}
	if sg.keys, err = siteKeyRing(cfg.SiteKey); err != nil {
		return err
	}
	enrollPath, err := Resolve(cfg.EnrollKeys)
	if err != nil {
		return fmt.Errorf("FACEGATE_ENROLL_KEYS: %w", err)
	}
	ring, err := auth.LoadKeyRing(enrollPath)
	if err != nil {
		return fmt.Errorf("FACEGATE_ENROLL_KEYS: %w", err)
	}
	until, err := cfg.SiteConfig.OperatorKeysUntil()
	if err != nil {
		return fmt.Errorf("FACEGATE_SITE_OPERATOR_KEYS_UNTIL: %w", err)
	}
	if err := checkSiteOperatorKeys(ring, cfg.SiteConfig.Ed25519Only(), until); err != nil {
		return err
	}
	sg.retired = until
	ccfg := site.ClientConfig{URLs: cfg.SiteNATSURLs, Name: cfg.DeviceID, User: cfg.SiteNATSUser, CAFile: cfg.SiteNATSCAFile, Logger: log}
	if cfg.SiteNATSPasswordFile != "" {
		if ccfg.PasswordFile, err = Resolve(cfg.SiteNATSPasswordFile); err != nil {
			return fmt.Errorf("FACEGATE_SITE_NATS_PASSWORD_FILE: %w", err)
		}
	}
	if sg.nc, err = site.Connect(ccfg); err != nil {
		return fmt.Errorf("FACEGATE_SITE_NATS_URLS: %w", err)
	}
	s.site = sg
	if sg.js, err = jetstream.New(sg.nc); err != nil {
		return fmt.Errorf("site: %w", err)
	}
	if cfg.SiteEnsureStreams {
		sg.ensure = &site.StreamOptions{Replicas: cfg.SiteReplicas}
	}
	if sg.pub, err = site.NewPublisher(site.PublisherConfig{JS: sg.js, Key: gateKey, Logger: log}); err != nil {
		return fmt.Errorf("site: %w", err)
	}
	sg.fwd, err = site.OpenForwarder(site.ForwarderConfig{Gate: cfg.DeviceID, JS: sg.js, Dir: SiteOutboxDir(cfg.StateDir), MaxBytes: cfg.SiteOutboxMaxBytes, Logger: log})
	if err != nil {
		return fmt.Errorf("FACEGATE_STATE_DIR: %w", err)
	}
	sg.rep, err = site.NewReplicator(site.ReplicatorConfig{
		Gate: cfg.DeviceID, JS: sg.js, Applier: s.gallery.SiteApplier(sg.keys), Verifier: NewSiteVerifier(ring, cfg.SiteConfig.Ed25519Only(), until), Gates: gates,
		OnRefused: sg.refused, OnApplied: sg.applied, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("site: %w", err)
	}
	applied, _ := s.gallery.SiteApplier(sg.keys).Applied()
	log.Info("site configured", "gate", cfg.DeviceID, "operator_keys", cfg.SiteOperatorKeys, "nats", cfg.SiteNATSURLs, "gates", len(gates), "applied", applied, "queued_events", sg.fwd.Pending())
	return nil
}

// runSite runs replication and event forwarding until ctx ends. Neither
// stops the gate: a failing gallery write is logged and retried.
func (s *Service) runSite(ctx context.Context) error {
	sg := s.site
	if sg == nil {
		return nil
	}
	var wg sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				err := f(ctx)
				if ctx.Err() != nil {
					return
				}
				sg.log.Error("site "+name+" stopped; restarting in 5 s", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
			}
		}()
	}
	if sg.ensure != nil {
		sg.ensureStreams(ctx)
	}
	run("replicator", sg.rep.Run)
	run("forwarder", sg.fwd.Run)
	run("statistics", func(ctx context.Context) error {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if sg.dirty.Swap(false) {
					s.updateGalleryStats()
				}
			}
		}
	})
	wg.Wait()
	return nil
}

// ensureStreams creates the site's streams, retrying while NATS is down.
func (sg *siteGate) ensureStreams(ctx context.Context) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := site.EnsureStreams(cctx, sg.js, *sg.ensure)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		sg.log.Warn("site streams not created yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// closeSite closes the outbox and the NATS connection.
func (s *Service) closeSite() {
	if s.site == nil {
		return
	}
	if s.site.fwd != nil {
		s.site.fwd.Close()
	}
	if s.site.nc != nil {
		s.site.nc.Close()
	}
}

// applied logs the moment the gate has caught up with the stream.
func (sg *siteGate) applied(seq, pending uint64) {
	sg.dirty.Store(true)
	if pending == 0 && !sg.caughtUp.Swap(true) {
		sg.log.Info("site gallery caught up", "applied", seq, "took", time.Since(sg.started).Round(time.Millisecond))
	}
}

// RefusedEvent is the site event a gate records for a gallery change it
// refused (on its own subject of the events stream, id
// refused.<gate>.<seq>: a gate that refuses the same message again after
// a crash records it once).
type RefusedEvent struct {
	Type      string    `json:"type"` // "site_change_refused"
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	DeviceID  string    `json:"device_id"`
	Seq       uint64    `json:"seq"`
	ChangeID  string    `json:"change_id,omitempty"`
	Origin    string    `json:"origin,omitempty"`
	Op        string    `json:"op,omitempty"`
	SubjectID string    `json:"subject_id,omitempty"`
	Reason    string    `json:"reason"` // gate_signature, key_retired, hmac_refused, unsigned, stale, msg_id or invalid
	Error     string    `json:"error"`
}

func refusalReason(err error) string {
	switch {
	case errors.Is(err, site.ErrGateSignature):
		return "gate_signature"
	case errors.Is(err, ErrKeyRetired):
		return "key_retired"
	case errors.Is(err, auth.ErrHMACRefused):
		return "hmac_refused" // operator-signed with an HMAC key, which every gate holds
	case errors.Is(err, site.ErrUnsigned):
		return "unsigned"
	case errors.Is(err, site.ErrStale):
		return "stale"
	case errors.Is(err, site.ErrMsgID):
		return "msg_id"
	}
	return "invalid"
}

// refused records a refused change as a site event.
func (sg *siteGate) refused(seq uint64, c *site.Change, err error) {
	ev := RefusedEvent{Type: "site_change_refused", ID: fmt.Sprintf("refused.%s.%d", sg.gate, seq), Time: time.Now().UTC(),
		DeviceID: sg.gate, Seq: seq, Reason: refusalReason(err), Error: err.Error()}
	if c != nil {
		ev.ChangeID, ev.Origin, ev.Op, ev.SubjectID = c.ID, c.Origin, string(c.Op), c.SubjectID
	}
	b, _ := json.Marshal(ev)
	if err := sg.fwd.Enqueue(site.Event{ID: ev.ID, Payload: b}); err != nil {
		sg.log.Error("refusal event not queued", "seq", seq, "err", err)
	}
}

// siteEvent queues a published access event for the site's event stream.
func (s *Service) siteEvent(ev mqtt.Event) {
	if s.site == nil {
		return
	}
	b, err := json.Marshal(ev)
	if err == nil {
		err = s.site.fwd.Enqueue(site.Event{ID: ev.ID, Payload: b})
	}
	if err != nil {
		s.log.Error("event not queued for the site", "event", ev.ID, "err", err)
	}
}

// siteEnroll wraps the enrollment handler for a site gate: the request is
// executed locally as on a single gate (every check of the handler
// applies), then published as a change to the gallery stream; if the site
// does not store it, the local change is undone and the request fails
// (nothing is queued: a removal made elsewhere meanwhile must not be
// overtaken). List requests and single gates go straight to next.
func (s *Service) siteEnroll(next func(context.Context, *mqtt.EnrollRequest) mqtt.EnrollReply) func(context.Context, *mqtt.EnrollRequest) mqtt.EnrollReply {
	return func(ctx context.Context, r *mqtt.EnrollRequest) mqtt.EnrollReply {
		if s.site == nil || r.Op == mqtt.OpList {
			return next(ctx, r)
		}
		return s.site.enroll(ctx, r, s.gallery, next)
	}
}

func (sg *siteGate) enroll(ctx context.Context, r *mqtt.EnrollRequest, g *Gallery, next func(context.Context, *mqtt.EnrollRequest) mqtt.EnrollReply) mqtt.EnrollReply {
	sg.mu.Lock()
	defer sg.mu.Unlock()
	fail := func(code mqtt.Code, msg string) mqtt.EnrollReply {
		sg.log.Warn("enrollment refused", "request", r.RequestID, "op", r.Op, "subject", r.SubjectID, "code", code, "msg", msg)
		return mqtt.EnrollReply{SubjectID: r.SubjectID, Status: mqtt.ReplyError, Code: code, Message: msg}
	}
	// A retired operator key signs nothing new: the other gates would
	// refuse the change (its sequence is past the key's last).
	if _, retired := sg.retired[r.Auth.KeyID]; retired {
		return fail(mqtt.CodeUnauthorised, "unauthorised")
	}
	// A gate cut off from the site does not enrol (docs/site.md); a
	// reconnect after a server's loss takes well under a second.
	for wait := time.Now().Add(3 * time.Second); !sg.nc.IsConnected(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(wait) {
			return fail(mqtt.CodeTimeout, "the site (NATS) is unreachable from this gate: nothing was enrolled; retry later or at another gate")
		}
	}
	before, err := g.snapshot(r.SubjectID)
	if err != nil {
		return fail(mqtt.CodeInternal, err.Error())
	}
	rep := next(ctx, r)
	if rep.Status == mqtt.ReplyError || rep.Code != "" {
		return rep
	}
	c, err := sg.change(r, g, rep.Templates)
	if err == nil {
		var seq uint64
		if seq, err = sg.pub.Publish(ctx, c); err == nil {
			sg.log.Info("site change published", "change", c.ID, "op", c.Op, "subject", c.SubjectID, "seq", seq)
			return rep
		}
	}
	if rerr := g.restore(r.SubjectID, before); rerr != nil {
		sg.log.Error("local change not undone after the site refused it: this gate's gallery differs from the site's until the person is changed again", "subject", r.SubjectID, "err", rerr)
	}
	return fail(mqtt.CodeTimeout, "not stored by the site, so not enrolled anywhere: "+err.Error())
}

// change builds the site change of a request the handler just executed
// locally: the person's templates as stored here (all of them for an
// enrolment, the n newest for add_images), sealed under the site key.
func (sg *siteGate) change(r *mqtt.EnrollRequest, g *Gallery, n int) (*site.Change, error) {
	c := &site.Change{
		ID: site.ChangeID(r.KeyID, r.Nonce), SubjectID: r.SubjectID, Origin: sg.gate, Created: time.Now().UTC(),
		Request: site.Request{KeyID: r.KeyID, TS: r.TS, Nonce: r.Nonce, Sig: r.Sig, Operation: r.Operation(),
			RequestID: r.RequestID, Body: r.CanonicalBody(sg.gate)},
	}
	switch r.Op {
	case mqtt.OpDelete:
		c.Op = site.OpRemove
		return c, nil
	case mqtt.OpAddImages:
		c.Op = site.OpAdd
	default:
		c.Op, c.Name = site.OpEnrol, r.Name
	}
	p, err := g.person(r.SubjectID)
	if err != nil {
		return nil, fmt.Errorf("site change %s: %w", c.ID, err)
	}
	ts := p.Templates
	if c.Op == site.OpAdd {
		if n <= 0 || n > len(ts) {
			return nil, fmt.Errorf("site change %s: %d templates added, %d stored", c.ID, n, len(ts))
		}
		ts = ts[len(ts)-n:]
	}
	if c.Templates, err = site.SealTemplates(sg.keys[0], c.ID, ts); err != nil {
		return nil, err
	}
	return c, nil
}

// hostPort splits a listen address; an empty port is the default.
func hostPort(addr string, def int) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if p == "" {
		return h, def, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q", p)
	}
	return h, n, nil
}

// StartSiteServer starts the NATS cluster member of `facegate site serve`
// (FACEGATE_SITE_SERVER_*); stateDir/nats is its store by default.
func StartSiteServer(c SiteServerConfig, stateDir string, log *slog.Logger) (*site.Server, error) {
	if err := c.ValidateServer(); err != nil {
		return nil, err
	}
	sc := site.ServerConfig{Name: c.ServerName, StoreDir: c.ServerStoreDir, ClusterName: c.ServerCluster, Routes: c.ServerRoutes,
		ClusterUser: c.ServerClusterUser, ClusterPasswordFile: c.ServerClusterPWF, CertFile: c.ServerCertFile, KeyFile: c.ServerKeyFile,
		CAFile: c.ServerCAFile, MaxStore: c.ServerMaxStoreByte, Logger: log}
	if sc.StoreDir == "" {
		sc.StoreDir = filepath.Join(stateDir, "nats")
	}
	var err error
	if sc.Host, sc.Port, err = hostPort(c.ServerListen, 4222); err != nil {
		return nil, fmt.Errorf("FACEGATE_SITE_SERVER_LISTEN: %w", err)
	}
	if sc.ClusterName != "" {
		if sc.ClusterHost, sc.ClusterPort, err = hostPort(c.ServerClusterAddr, 6222); err != nil {
			return nil, fmt.Errorf("FACEGATE_SITE_SERVER_CLUSTER_LISTEN: %w", err)
		}
	}
	for _, s := range c.ServerUsers {
		u, err := parseSiteUser(s)
		if err != nil {
			return nil, fmt.Errorf("FACEGATE_SITE_SERVER_USERS: %w", err)
		}
		if u.passwordFile, err = Resolve(u.passwordFile); err != nil {
			return nil, fmt.Errorf("FACEGATE_SITE_SERVER_USERS: %w", err)
		}
		sc.Users = append(sc.Users, site.User{Name: u.name, PasswordFile: u.passwordFile, Gate: u.gate})
	}
	if sc.ClusterPasswordFile != "" {
		if sc.ClusterPasswordFile, err = Resolve(sc.ClusterPasswordFile); err != nil {
			return nil, fmt.Errorf("FACEGATE_SITE_SERVER_CLUSTER_PASSWORD_FILE: %w", err)
		}
	}
	if err := os.MkdirAll(sc.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("FACEGATE_SITE_SERVER_STORE_DIR: %w", err)
	}
	return site.StartServer(sc)
}

// ConnectSite connects to the site as the configured NATS user (for
// `facegate site status` and `init`).
func ConnectSite(c SiteConfig, name string) (*nats.Conn, jetstream.JetStream, error) {
	if !c.Enabled() {
		return nil, nil, fmt.Errorf("%w: FACEGATE_SITE_NATS_URLS is not set", ErrConfig)
	}
	cc := site.ClientConfig{URLs: c.SiteNATSURLs, Name: name, User: c.SiteNATSUser, CAFile: c.SiteNATSCAFile}
	if c.SiteNATSPasswordFile != "" {
		p, err := Resolve(c.SiteNATSPasswordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("FACEGATE_SITE_NATS_PASSWORD_FILE: %w", err)
		}
		cc.PasswordFile = p
	}
	nc, err := site.Connect(cc)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
