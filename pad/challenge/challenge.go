package challenge

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/facegate/facegate/infer/quality"
)

// Kind is what a challenge asks the person to do.
type Kind string

// The challenges. Left and right are the subject's own.
const (
	TurnLeft  Kind = "turn_left"
	TurnRight Kind = "turn_right"
)

// Kinds lists the challenges an Issuer draws from.
var Kinds = []Kind{TurnLeft, TurnRight}

// Challenge is one challenge issued to the person at the door.
type Challenge struct {
	ID       string    // random, 16 hex digits
	Kind     Kind      // what to do
	Issued   time.Time // when it was shown
	Deadline time.Time // Issued + Config.Timeout
}

// Config is the rule's parameters (package doc). Angles are degrees.
type Config struct {
	// Mirrored: the camera's frames are mirrored (a selfie view), so the
	// subject's left is the image's left.
	Mirrored   bool
	FrontalMax float64 // |Yaw| at most this on the first frame
	Turn       float64 // yaw change from the baseline in the asked direction
	TurnAbs    float64 // yaw in the asked direction, absolute
	Wrong      float64 // change and absolute yaw the other way that fail
	Agree      float64 // |Yaw - MidlineYaw| at most this on a turned frame
	HoldFrames int     // consecutive turned frames needed
	// MinReaction: a turn before Issued+MinReaction is too early.
	MinReaction time.Duration
	Timeout     time.Duration // from Issued to the deadline
	MaxGap      time.Duration // longest time without the face
	MaxJump     float64       // box centre move between frames, in box widths
	MaxScale    float64       // box side ratio between frames (≥ 1)
}

// DefaultConfig is the calibrated rule (docs/pad.md).
func DefaultConfig() Config {
	return Config{
		FrontalMax: 30, Turn: 20, TurnAbs: 20, Wrong: 15, Agree: 15, HoldFrames: 2,
		MinReaction: 300 * time.Millisecond, Timeout: 5 * time.Second,
		MaxGap: 700 * time.Millisecond, MaxJump: 0.75, MaxScale: 1.5,
	}
}

// Validate rejects unusable parameters, naming the field.
func (c Config) Validate() error {
	var errs []error
	ang := func(name string, v, lo, hi float64) {
		if math.IsNaN(v) || v < lo || v > hi {
			errs = append(errs, fmt.Errorf("challenge: %s %v out of [%v, %v]", name, v, lo, hi))
		}
	}
	ang("FrontalMax", c.FrontalMax, 0, 60)
	ang("Turn", c.Turn, 1, 80)
	ang("TurnAbs", c.TurnAbs, 0, 80)
	ang("Wrong", c.Wrong, 1, 80)
	ang("Agree", c.Agree, 1, 90)
	ang("MaxJump", c.MaxJump, 0.01, 10)
	ang("MaxScale", c.MaxScale, 1, 10)
	if c.HoldFrames < 1 || c.HoldFrames > 100 {
		errs = append(errs, fmt.Errorf("challenge: HoldFrames %d out of [1, 100]", c.HoldFrames))
	}
	if c.Timeout <= 0 || c.MinReaction < 0 || c.MinReaction >= c.Timeout {
		errs = append(errs, fmt.Errorf("challenge: need 0 ≤ MinReaction (%v) < Timeout (%v)", c.MinReaction, c.Timeout))
	}
	if c.MaxGap <= 0 {
		errs = append(errs, fmt.Errorf("challenge: MaxGap %v must be positive", c.MaxGap))
	}
	return errors.Join(errs...)
}

// Issuer draws challenges. It is safe for concurrent use.
type Issuer struct {
	cfg Config
	mu  sync.Mutex
	rng *rand.Rand
}

// NewIssuer returns an issuer drawing from a ChaCha8 generator seeded from
// crypto/rand, or from seed when it is not nil (tests).
func NewIssuer(cfg Config, seed *[32]byte) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var s [32]byte
	if seed != nil {
		s = *seed
	} else if _, err := crand.Read(s[:]); err != nil {
		return nil, fmt.Errorf("challenge: seed: %w", err)
	}
	return &Issuer{cfg: cfg, rng: rand.New(rand.NewChaCha8(s))}, nil
}

// Issue draws a challenge shown at now.
func (is *Issuer) Issue(now time.Time) Challenge {
	is.mu.Lock()
	defer is.mu.Unlock()
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], is.rng.Uint64())
	return Challenge{
		ID: hex.EncodeToString(id[:]), Kind: Kinds[is.rng.IntN(len(Kinds))],
		Issued: now, Deadline: now.Add(is.cfg.Timeout),
	}
}

// Observation is one frame after the challenge was issued.
type Observation struct {
	Time time.Time
	// Face: the door's face was found in this frame; Box and Keypoints
	// are read only when it was.
	Face      bool
	Box       quality.Box
	Keypoints quality.Keypoints
}

// Pose is the two yaw estimates of the package doc, in degrees; positive:
// the face turned towards the image's right.
type Pose struct {
	Yaw, MidlineYaw float64
	OK              bool // false when the keypoints hold no face geometry
}

// Midline geometry of the mean-face model (infer/quality): the nose tip's
// depth in front of the line from the eye midpoint to the mouth centre, in
// inter-ocular distances: 0.45 - 0.56·0.10/1.14.
const midlineNoseDepth = 0.45 - 0.56*0.10/1.14

// Measure reads both yaw estimates from the keypoints.
func Measure(k quality.Keypoints) Pose {
	p := quality.EstimatePose(k)
	mx, my := (k.RightEye[0]+k.LeftEye[0])/2, (k.RightEye[1]+k.LeftEye[1])/2
	ux, uy := k.Mouth[0]-mx, k.Mouth[1]-my
	ul := math.Hypot(ux, uy)
	if p.InterOcular == 0 || ul == 0 || p.Pitch == 90 {
		return Pose{}
	}
	ux, uy = ux/ul, uy/ul
	// (uy, -ux) points to the image's right when the midline points down.
	side := ((k.Nose[0]-mx)*uy - (k.Nose[1]-my)*ux) / (p.InterOcular / 2)
	return Pose{Yaw: p.Yaw, MidlineYaw: math.Atan(side*0.5/midlineNoseDepth) * 180 / math.Pi, OK: true}
}
