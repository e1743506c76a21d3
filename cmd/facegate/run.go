package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon"
	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
)

// cmdRun is the daemon: configuration from the environment, validated
// before anything opens; runs until SIGINT/SIGTERM.
func cmdRun(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate run\n\nRuns the gate daemon. Every setting comes from FACEGATE_* environment variables: `facegate config` lists them.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	cfg, err := daemon.LoadConfig()
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	log.Info("facegate starting", "version", Version(), "device_id", cfg.DeviceID)
	s, err := daemon.NewService(cfg, Version(), log)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(ctx)
}

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
	fs.StringVar(&c.keys, "keys", "", "HMAC key ring file (id:base64secret lines; the first key signs)")
	fs.StringVar(&c.caFile, "ca-file", os.Getenv("FACEGATE_MQTT_CA_FILE"), "CA certificate (PEM) the broker's certificate must chain to (system pool when empty)")
	fs.StringVar(&c.certFile, "cert-file", os.Getenv("FACEGATE_MQTT_CERT_FILE"), "client certificate (PEM) for mutual TLS")
	fs.StringVar(&c.keyFile, "key-file", os.Getenv("FACEGATE_MQTT_KEY_FILE"), "client certificate's private key (PEM)")
	fs.StringVar(&c.serverName, "server-name", os.Getenv("FACEGATE_MQTT_SERVER_NAME"), "name the broker's certificate must carry, when not the URL's host")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long to wait for the reply")
}

func (c *clientFlags) connect(id string) (paho.Client, error) {
	if c.device == "" {
		return nil, fmt.Errorf("-device is required (or FACEGATE_DEVICE_ID)")
	}
	o := paho.NewClientOptions().AddBroker(c.broker).SetClientID(id + "-" + randomID()[:8]).
		SetCleanSession(true).SetConnectTimeout(10 * time.Second).
		// The gate (or its embedded broker) may still be starting.
		SetConnectRetry(true).SetConnectRetryInterval(time.Second)
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

// cmdEnroll sends a signed enrollment request to a gate and prints its reply.
func cmdEnroll(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	frames := fs.Int("frames", 3, "with camera: good frames to enrol from (1-5)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: facegate enroll [flags] OPERATION ARGS...

  add SUBJECT NAME IMAGE...      enrol a person from 1-5 photos (JPEG or PNG)
  add-images SUBJECT IMAGE...    add photos to an enrolled person
  camera SUBJECT NAME            enrol from the next -frames good camera frames
  delete SUBJECT                 delete a person (templates erased)
  list                           list enrolled people

The request is signed with the first key of -keys (HMAC-SHA256, see
docs/security.md) and sent to PREFIX/DEVICE/enroll/request; the reply is
printed as JSON. Exits 1 when the gate refuses the request.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	a := fs.Args()
	if len(a) == 0 {
		fs.Usage()
		return errUsage
	}
	req := &mqtt.EnrollRequest{RequestID: randomID()}
	need := func(n int) error {
		if len(a) < n {
			fs.Usage()
			return errUsage
		}
		return nil
	}
	var images []string
	switch a[0] {
	case "add":
		if err := need(4); err != nil {
			return err
		}
		req.Op, req.SubjectID, req.Name, images = mqtt.OpAdd, a[1], a[2], a[3:]
	case "add-images":
		if err := need(3); err != nil {
			return err
		}
		req.Op, req.SubjectID, images = mqtt.OpAddImages, a[1], a[2:]
	case "camera":
		if err := need(3); err != nil {
			return err
		}
		req.Op, req.SubjectID, req.Name, req.Frames = mqtt.OpEnrollFromCamera, a[1], a[2], *frames
	case "delete":
		if err := need(2); err != nil {
			return err
		}
		req.Op, req.SubjectID = mqtt.OpDelete, a[1]
	case "list":
		req.Op = mqtt.OpList
	default:
		fs.Usage()
		return errUsage
	}
	for _, p := range images {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		req.Images = append(req.Images, base64.StdEncoding.EncodeToString(b))
	}
	if cf.keys == "" {
		return fmt.Errorf("-keys is required: enrollment requests are signed")
	}
	ring, err := auth.LoadKeyRing(cf.keys)
	if err != nil {
		return err
	}
	if req.Auth, err = mqtt.Sign(ring.Current(), req, cf.device, time.Now()); err != nil {
		return err
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return err
	}
	cl, err := cf.connect("facegate-enroll")
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	topics := mqtt.NewTopics(cf.prefix, cf.device)
	replies := make(chan []byte, 1)
	t := cl.Subscribe(topics.EnrollReply(req.RequestID), 1, func(_ paho.Client, m paho.Message) {
		select {
		case replies <- m.Payload():
		default:
		}
	})
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("subscribe: %v", t.Error())
	}
	if t := cl.Publish(topics.EnrollRequest, 1, false, payload); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("publish: %v", t.Error())
	}
	select {
	case b := <-replies:
		var rep mqtt.EnrollReply
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("reply: %w", err)
		}
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
		if rep.Status != mqtt.ReplyOK {
			return fmt.Errorf("gate refused the request: %s: %s", rep.Code, rep.Message)
		}
		return nil
	case <-time.After(cf.timeout):
		return fmt.Errorf("no reply from %s within %s", cf.device, cf.timeout)
	}
}

// cmdWatch prints a gate's events (and, with -stats, its stats) as they
// arrive, one JSON line each.
func cmdWatch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	withStats := fs.Bool("stats", false, "also print stats messages")
	count := fs.Int("count", 0, "exit after this many events (0 = run until interrupted)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	cl, err := cf.connect("facegate-watch")
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	topics := mqtt.NewTopics(cf.prefix, cf.device)
	lines := make(chan string, 64)
	handler := func(_ paho.Client, m paho.Message) {
		select {
		case lines <- m.Topic() + " " + string(m.Payload()):
		default:
		}
	}
	subs := map[string]byte{topics.Events: 1, topics.Status: 1}
	if *withStats {
		subs[topics.Stats] = 0
	}
	if t := cl.SubscribeMultiple(subs, handler); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("subscribe: %v", t.Error())
	}
	events := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-lines:
			fmt.Fprintln(stdout, l)
			if strings.HasPrefix(l, topics.Events+" ") {
				events++
				if *count > 0 && events >= *count {
					return nil
				}
			}
		}
	}
}
