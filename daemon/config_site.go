package daemon

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// SiteConfig joins the gate to a site of gates whose galleries are
// replicated over NATS JetStream (docs/site.md). Without
// FACEGATE_SITE_NATS_URLS the gate is a single gate: no NATS, nothing
// changes. Secrets are files or systemd credential names, never values.
type SiteConfig struct {
	SiteNATSURLs          []string `envconfig:"SITE_NATS_URLS" desc:"NATS URLs of the site's cluster members, e.g. nats://n1:4222,nats://n2:4222 (empty = single gate, no site)"`
	SiteNATSUser          string   `envconfig:"SITE_NATS_USER" desc:"this gate's NATS user (empty: no password)"`
	SiteNATSPasswordFile  string   `envconfig:"SITE_NATS_PASSWORD_FILE" desc:"file or credential holding the NATS user's password"`
	SiteNATSCAFile        string   `envconfig:"SITE_NATS_CA_FILE" desc:"CA of the NATS servers' certificates (tls:// URLs)"`
	SiteGateKey           string   `envconfig:"SITE_GATE_KEY" default:"site-gate-key" desc:"this gate's Ed25519 signing seed, base64, mode 0600 (file or credential); facegate site keygen makes one"`
	SiteGateKeys          string   `envconfig:"SITE_GATE_KEYS" default:"/etc/facegate/site-gate-keys" desc:"every gate's public key, lines of '<device id> <base64 key>' (file or credential)"`
	SiteKey               string   `envconfig:"SITE_KEY" default:"site-key" desc:"the site's key ring sealing templates on the stream, same format as GALLERY_KEY, the same on every gate (file or credential)"`
	SiteOperatorKeys      string   `envconfig:"SITE_OPERATOR_KEYS" default:"ed25519" desc:"which operator signatures a site's gates accept on replicated changes: ed25519 (only Ed25519 operator keys; FACEGATE_ENROLL_KEYS must then hold only ed25519: public keys) or any (HMAC keys too, which every gate holds, so a compromised gate could enrol people at every door)"`
	SiteOperatorKeysUntil []string `envconfig:"SITE_OPERATOR_KEYS_UNTIL" desc:"retired or revoked operator keys, <key id>=<last gallery stream sequence> each: changes signed with such a key are applied up to that sequence (HMAC ones too, even with SITE_OPERATOR_KEYS=ed25519) and refused after it (reason key_retired); this gate refuses new requests signed with it"`
	SiteEnsureStreams     bool     `envconfig:"SITE_ENSURE_STREAMS" default:"false" desc:"create or update the site's streams at start (needs a NATS user allowed to; gate users are not)"`
	SiteReplicas          int      `envconfig:"SITE_REPLICAS" default:"3" desc:"replicas of the site's streams when this gate or facegate site init creates them (1, 3 or 5)"`
	SiteOutboxMaxBytes    int64    `envconfig:"SITE_OUTBOX_MAX_BYTES" default:"67108864" desc:"bound on events queued on disk for the site while NATS is unreachable (oldest dropped and counted beyond)"`

	SiteServerConfig
}

// SiteServerConfig runs a NATS cluster member inside facegate (`facegate
// site serve`, systemd/facegate-nats.service): the same nats-server as the
// pinned Go module, so a site needs no other binary.
type SiteServerConfig struct {
	ServerName         string   `envconfig:"SITE_SERVER_NAME" desc:"facegate site serve: unique member name, e.g. n1"`
	ServerListen       string   `envconfig:"SITE_SERVER_LISTEN" default:"127.0.0.1:4222" desc:"facegate site serve: client listener host:port"`
	ServerStoreDir     string   `envconfig:"SITE_SERVER_STORE_DIR" desc:"facegate site serve: JetStream storage (default STATE_DIR/nats)"`
	ServerCluster      string   `envconfig:"SITE_SERVER_CLUSTER" default:"facegate" desc:"facegate site serve: cluster name (empty: a standalone server)"`
	ServerClusterAddr  string   `envconfig:"SITE_SERVER_CLUSTER_LISTEN" default:"127.0.0.1:6222" desc:"facegate site serve: route listener host:port"`
	ServerRoutes       []string `envconfig:"SITE_SERVER_ROUTES" desc:"facegate site serve: nats-route://host:port of every member (listing itself is harmless)"`
	ServerClusterUser  string   `envconfig:"SITE_SERVER_CLUSTER_USER" desc:"facegate site serve: user authenticating routes"`
	ServerClusterPWF   string   `envconfig:"SITE_SERVER_CLUSTER_PASSWORD_FILE" desc:"facegate site serve: file holding the routes' password"`
	ServerUsers        []string `envconfig:"SITE_SERVER_USERS" desc:"facegate site serve: name=password-file[=gate id] per user; a user with a gate id gets only that gate's permissions (empty: no authentication, loopback only)"`
	ServerCertFile     string   `envconfig:"SITE_SERVER_CERT_FILE" desc:"facegate site serve: TLS certificate (with KEY_FILE and CA_FILE)"`
	ServerKeyFile      string   `envconfig:"SITE_SERVER_KEY_FILE" desc:"facegate site serve: TLS key"`
	ServerCAFile       string   `envconfig:"SITE_SERVER_CA_FILE" desc:"facegate site serve: CA of clients and peers"`
	ServerMaxStoreByte int64    `envconfig:"SITE_SERVER_MAX_STORE" default:"0" desc:"facegate site serve: bound on JetStream storage in bytes (0: the server's default)"`
}

// Values of FACEGATE_SITE_OPERATOR_KEYS.
const (
	// SiteOperatorKeysEd25519 (the default): replicated changes must be
	// authorised by an Ed25519 operator key; HMAC-signed ones are refused.
	SiteOperatorKeysEd25519 = "ed25519"
	// SiteOperatorKeysAny: HMAC operator keys are accepted too (a site
	// migrating from HMAC keys; docs/site.md).
	SiteOperatorKeysAny = "any"
)

// Ed25519Only reports whether the site accepts only Ed25519 operator keys.
func (c SiteConfig) Ed25519Only() bool { return c.SiteOperatorKeys != SiteOperatorKeysAny }

// OperatorKeysUntil parses FACEGATE_SITE_OPERATOR_KEYS_UNTIL: the last
// gallery stream sequence each retired operator key may have signed.
func (c SiteConfig) OperatorKeysUntil() (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, e := range c.SiteOperatorKeysUntil {
		id, n, ok := strings.Cut(e, "=")
		seq, err := strconv.ParseUint(n, 10, 64)
		if !ok || !validGateID(id) || err != nil || seq == 0 {
			return nil, fmt.Errorf("%q is not <key id>=<stream sequence from 1>", e)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("key %q listed twice", id)
		}
		out[id] = seq
	}
	return out, nil
}

// Enabled reports whether the gate is part of a site.
func (c SiteConfig) Enabled() bool { return len(c.SiteNATSURLs) > 0 }

// validGateID is site's rule for gate ids ([A-Za-z0-9._-], 1-64).
func validGateID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
}

// validate reports the site settings' problems through bad (Validate's
// reporter); deviceID is the gate's id, its name in the site.
func (c SiteConfig) validate(deviceID string, bad func(v, format string, args ...any)) {
	if !c.Enabled() {
		return
	}
	for _, u := range c.SiteNATSURLs {
		p, err := url.Parse(u)
		switch {
		case err != nil || p.Host == "":
			bad("SITE_NATS_URLS", "%q is not a URL such as nats://host:4222", redactURL(u))
		case p.Scheme != "nats" && p.Scheme != "tls":
			bad("SITE_NATS_URLS", "%q: scheme must be nats or tls", redactURL(u))
		case p.User != nil:
			bad("SITE_NATS_URLS", "%q must not carry a user; use FACEGATE_SITE_NATS_USER and _PASSWORD_FILE", redactURL(u))
		}
	}
	if (c.SiteNATSUser == "") != (c.SiteNATSPasswordFile == "") {
		bad("SITE_NATS_USER", "a NATS user and FACEGATE_SITE_NATS_PASSWORD_FILE go together")
	}
	if !validGateID(deviceID) {
		bad("DEVICE_ID", "%q: in a site the gate id must be 1-64 of [A-Za-z0-9._-]", deviceID)
	}
	if c.SiteGateKey == "" || c.SiteGateKeys == "" || c.SiteKey == "" {
		bad("SITE_KEY", "a site needs FACEGATE_SITE_GATE_KEY, FACEGATE_SITE_GATE_KEYS and FACEGATE_SITE_KEY")
	}
	if c.SiteOperatorKeys != SiteOperatorKeysEd25519 && c.SiteOperatorKeys != SiteOperatorKeysAny {
		bad("SITE_OPERATOR_KEYS", "%q is not ed25519 or any", c.SiteOperatorKeys)
	}
	if _, err := c.OperatorKeysUntil(); err != nil {
		bad("SITE_OPERATOR_KEYS_UNTIL", "%v", err)
	}
	if c.SiteReplicas != 1 && c.SiteReplicas != 3 && c.SiteReplicas != 5 {
		bad("SITE_REPLICAS", "%d is not 1, 3 or 5", c.SiteReplicas)
	}
	if c.SiteOutboxMaxBytes < 1<<20 {
		bad("SITE_OUTBOX_MAX_BYTES", "%d is below 1 MiB", c.SiteOutboxMaxBytes)
	}
}

// ValidateServer checks the settings of `facegate site serve`.
func (c SiteServerConfig) ValidateServer() error {
	var errs []string
	bad := func(v, format string, args ...any) {
		errs = append(errs, EnvPrefix+"_"+v+": "+fmt.Sprintf(format, args...))
	}
	if !validGateID(c.ServerName) {
		bad("SITE_SERVER_NAME", "%q must be 1-64 of [A-Za-z0-9._-]", c.ServerName)
	}
	for name, a := range map[string]string{"SITE_SERVER_LISTEN": c.ServerListen, "SITE_SERVER_CLUSTER_LISTEN": c.ServerClusterAddr} {
		if name == "SITE_SERVER_CLUSTER_LISTEN" && c.ServerCluster == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad(name, "%q is not host:port", a)
		}
	}
	for _, r := range c.ServerRoutes {
		if u, err := url.Parse(r); err != nil || u.Scheme != "nats-route" || u.User != nil {
			bad("SITE_SERVER_ROUTES", "%q is not nats-route://host:port (without credentials)", redactURL(r))
		}
	}
	if (c.ServerClusterUser == "") != (c.ServerClusterPWF == "") {
		bad("SITE_SERVER_CLUSTER_USER", "the routes' user and password file go together")
	}
	for _, u := range c.ServerUsers {
		if _, err := parseSiteUser(u); err != nil {
			bad("SITE_SERVER_USERS", "%v", err)
		}
	}
	if (c.ServerCertFile == "") != (c.ServerKeyFile == "") || (c.ServerCertFile == "") != (c.ServerCAFile == "") {
		bad("SITE_SERVER_CERT_FILE", "TLS needs a certificate, its key and a CA file")
	}
	if c.ServerMaxStoreByte < 0 {
		bad("SITE_SERVER_MAX_STORE", "%d is negative", c.ServerMaxStoreByte)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n  %s", ErrConfig, strings.Join(errs, "\n  "))
	}
	return nil
}

// siteUser is one entry of FACEGATE_SITE_SERVER_USERS.
type siteUser struct{ name, passwordFile, gate string }

func parseSiteUser(s string) (siteUser, error) {
	parts := strings.Split(s, "=")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return siteUser{}, fmt.Errorf("%q is not name=password-file[=gate id]", s)
	}
	u := siteUser{name: parts[0], passwordFile: parts[1]}
	if len(parts) == 3 {
		if !validGateID(parts[2]) {
			return siteUser{}, fmt.Errorf("%q: gate id %q must be 1-64 of [A-Za-z0-9._-]", s, parts[2])
		}
		u.gate = parts[2]
	}
	return u, nil
}
