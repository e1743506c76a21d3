package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/mqtt"
)

// cmdEnroll sends a signed enrollment request to a gate and prints its reply.
func cmdEnroll(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	frames := fs.Int("frames", 3, "with camera: good frames to enrol from (1-5)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: facegate enroll [flags] OPERATION ARGS...

  add SUBJECT NAME IMAGE...      enrol a new person from 1-5 photos (JPEG or PNG);
                                 refused (subject_exists) if SUBJECT is enrolled
  replace SUBJECT NAME IMAGE...  overwrite an enrolled person's name and photos
  add-images SUBJECT IMAGE...    add photos to an enrolled person
  camera SUBJECT NAME            enrol from the next -frames good camera frames
  delete SUBJECT                 delete a person (templates erased)
  list                           list enrolled people
  import (-csv FILE | -dir DIR)  bulk import (facegate enroll import -h)

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
	case "replace":
		if err := need(4); err != nil {
			return err
		}
		req.Op, req.SubjectID, req.Name, images = mqtt.OpReplace, a[1], a[2], a[3:]
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
	case "import":
		return cmdImport(ctx, a[1:], stdout, cf)
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
	key, err := signingKey(cf.keys)
	if err != nil {
		return err
	}
	if req.Auth, err = mqtt.Sign(key, req, cf.device, time.Now()); err != nil {
		return err
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return err
	}
	cl, err := cf.connect("facegate-enroll", nil)
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
