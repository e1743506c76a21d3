package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
)

// clientFlags are the broker settings of the client commands. Their
// defaults come from the daemon's FACEGATE_MQTT_* variables, so a shell
// with the gate's environment needs no flags.
type clientFlags struct {
	broker, prefix, device, user, passwordFile, keys string
	caFile, certFile, keyFile, serverName            string
	timeout                                          time.Duration
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	broker := "tcp://127.0.0.1:1883"
	if b := os.Getenv("FACEGATE_MQTT_BROKERS"); b != "" {
		broker = strings.Split(b, ",")[0]
	}
	prefix := "facegate"
	if p := os.Getenv("FACEGATE_MQTT_PREFIX"); p != "" {
		prefix = p
	}
	fs.StringVar(&c.broker, "broker", broker, "broker URL")
	fs.StringVar(&c.prefix, "prefix", prefix, "topic prefix")
	fs.StringVar(&c.device, "device", os.Getenv("FACEGATE_DEVICE_ID"), "the gate's device id")
	fs.StringVar(&c.user, "user", os.Getenv("FACEGATE_MQTT_USERNAME"), "broker user name")
	fs.StringVar(&c.passwordFile, "password-file", "", "file holding the broker password")
	fs.StringVar(&c.keys, "keys", "", "the operator's key file, mode 0600; its first key signs: an Ed25519 private key (ed25519-private:id:seed, from facegate site keygen -operator) or an HMAC key (id:base64secret)")
	fs.StringVar(&c.caFile, "ca-file", os.Getenv("FACEGATE_MQTT_CA_FILE"), "CA certificate (PEM) the broker's certificate must chain to (system pool when empty)")
	fs.StringVar(&c.certFile, "cert-file", os.Getenv("FACEGATE_MQTT_CERT_FILE"), "client certificate (PEM) for mutual TLS")
	fs.StringVar(&c.keyFile, "key-file", os.Getenv("FACEGATE_MQTT_KEY_FILE"), "client certificate's private key (PEM)")
	fs.StringVar(&c.serverName, "server-name", os.Getenv("FACEGATE_MQTT_SERVER_NAME"), "name the broker's certificate must carry, when not the URL's host")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long to wait for the reply")
}

// connect opens a client connection; onConnect, when set, runs after every
// (re)connection: subscriptions belong there, so that they survive a
// broker restart (a clean session forgets them).
func (c *clientFlags) connect(id string, onConnect paho.OnConnectHandler) (paho.Client, error) {
	if c.device == "" {
		return nil, fmt.Errorf("-device is required (or FACEGATE_DEVICE_ID)")
	}
	o := paho.NewClientOptions().AddBroker(c.broker).SetClientID(id + "-" + randomID()[:8]).
		SetCleanSession(true).SetConnectTimeout(10 * time.Second).
		// The gate (or its embedded broker) may still be starting.
		SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetAutoReconnect(true).SetMaxReconnectInterval(5 * time.Second)
	if onConnect != nil {
		o.SetOnConnectHandler(onConnect)
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return nil, fmt.Errorf("-cert-file and -key-file go together")
	}
	if _, err := url.Parse(c.broker); err != nil {
		return nil, fmt.Errorf("-broker: %w", err)
	}
	// The daemon's own rules: TLS files need a TLS URL, and a password to a
	// plain remote broker is warned about.
	mc := mqtt.Config{Brokers: []string{c.broker}, CAFile: c.caFile, CertFile: c.certFile, KeyFile: c.keyFile,
		ServerName: c.serverName, PasswordFile: c.passwordFile}
	if mc.TLSFilesUnused() {
		return nil, fmt.Errorf("-ca-file/-cert-file (or FACEGATE_MQTT_CA_FILE/CERT_FILE) set, but broker %s is not TLS: use ssl://", c.broker)
	}
	tlsCfg, err := mc.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	if mc.PlaintextCredentialsTo() != "" {
		slog.Warn("the broker password crosses the network in clear: use an ssl:// broker URL", "broker", c.broker)
	}
	if c.user != "" {
		o.SetUsername(c.user)
	}
	if c.passwordFile != "" {
		b, err := os.ReadFile(c.passwordFile)
		if err != nil {
			return nil, err
		}
		o.SetPassword(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	}
	cl := paho.NewClient(o)
	t := cl.Connect()
	if !t.WaitTimeout(c.timeout) || t.Error() != nil {
		cl.Disconnect(0)
		return nil, fmt.Errorf("connect %s: no broker within %s (%v)", c.broker, c.timeout, t.Error())
	}
	return cl, nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// signingKey loads the operator's key file (-keys) and returns its first
// key, which signs: an Ed25519 private key or an HMAC key. A file whose
// first key is an Ed25519 public key (a gate's FACEGATE_ENROLL_KEYS line)
// is refused here, before anything is sent.
func signingKey(path string) (auth.Key, error) {
	if path == "" {
		return auth.Key{}, fmt.Errorf("-keys is required: enrollment requests are signed")
	}
	ring, err := auth.LoadKeyRing(path)
	if err != nil {
		return auth.Key{}, fmt.Errorf("-keys: %w", err)
	}
	k := ring.Current()
	if k.Type() == auth.KeyEd25519Public {
		return auth.Key{}, fmt.Errorf("-keys %s: key %q is an Ed25519 public key (what gates hold); sign with the operator's private key file (ed25519-private:%s:..., facegate site keygen -operator)", path, k.ID, k.ID)
	}
	return k, nil
}
