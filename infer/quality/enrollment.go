package quality

import (
	"fmt"
	"math"
)

// Enrollment photos are not camera frames: an HR or badge photo is small
// (a 250x250 JPEG), often re-compressed, and taken once. What matters is
// whether a template built from it will match the person later, so the
// enrollment limits come from that (docs/enrollment.md, `facegate eval
// -enrollment`), not from the live-frame gate above.
//
// Each measure has two limits: past the Refuse limit a photo is refused
// with a reason a person can act on; between Refuse and Accept it is
// accepted with a warning (borderline); within Accept it is accepted.

// EnrollmentLimits are the two sets of limits. A zero limit disables its
// check, as in Thresholds.
type EnrollmentLimits struct {
	Refuse Thresholds
	Accept Thresholds
	// MinDetScore refuses faces the detector is unsure of (occluded,
	// cut off or not a face); AcceptDetScore is its accept limit.
	MinDetScore, AcceptDetScore float64
}

// DefaultEnrollmentLimits are calibrated on ../shared/data by `facegate
// eval -enrollment` (LFW photos and degraded copies of them, each judged
// by how often its template matched the person's other photos at the
// FMR 1e-3 threshold of dlib-resnet-v1): see docs/enrollment.md.
func DefaultEnrollmentLimits() EnrollmentLimits {
	return EnrollmentLimits{
		Refuse: Thresholds{MinInterOcular: 10, MinSharpness: 2.5, MaxYaw: 60, MaxPitch: 45, MaxRoll: 40,
			MinMeanLuma: 25, MaxMeanLuma: 235, MaxClipped: 0.5},
		Accept: Thresholds{MinInterOcular: 14, MinSharpness: 8, MaxYaw: 45, MaxPitch: 30, MaxRoll: 20,
			MinMeanLuma: 45, MaxMeanLuma: 215, MaxClipped: 0.25},
		MinDetScore: 0.75, AcceptDetScore: 0.88,
	}
}

// Verdict is the outcome of judging an enrollment photo.
type Verdict string

// Verdicts.
const (
	Accepted   Verdict = "accepted"
	Borderline Verdict = "borderline" // accepted with a warning
	Refused    Verdict = "refused"
)

// EnrollmentJudgement is the verdict on one enrollment photo with its
// reasons (one per measure outside the accept limits, in words a person
// can act on) and a score in [0, 1]: 1 when every measure is within its
// accept limit, 0 when one is past its refuse limit, in between the worst
// measure's position between its two limits.
type EnrollmentJudgement struct {
	Verdict Verdict
	Score   float64
	Reasons []string
}

// Judge applies the limits to a face's quality report and its detector
// score.
func (l EnrollmentLimits) Judge(r Report, detScore float64) EnrollmentJudgement {
	j := EnrollmentJudgement{Verdict: Accepted, Score: 1}
	check := func(value, refuse, accept float64, higherBetter bool, msg func(limit float64) string) {
		if refuse == 0 && accept == 0 {
			return
		}
		v, rf, ac := value, refuse, accept
		if !higherBetter {
			v, rf, ac = -v, -rf, -ac
		}
		if accept == 0 {
			ac = rf
		}
		switch {
		case refuse != 0 && v < rf:
			j.Verdict, j.Score = Refused, 0
			j.Reasons = append(j.Reasons, msg(refuse))
		case v < ac:
			if j.Verdict != Refused {
				j.Verdict = Borderline
				s := 0.0
				if ac > rf {
					s = (v - rf) / (ac - rf)
				}
				j.Score = math.Min(j.Score, math.Max(0, s))
			}
			j.Reasons = append(j.Reasons, msg(accept))
		}
	}
	R, A := l.Refuse, l.Accept
	check(r.InterOcular, R.MinInterOcular, A.MinInterOcular, true, func(lim float64) string {
		return fmt.Sprintf("face %.0f px between the eyes, need ≥ %.0f: use a larger or closer photo", r.InterOcular, lim)
	})
	check(r.Sharpness, R.MinSharpness, A.MinSharpness, true, func(lim float64) string {
		return fmt.Sprintf("face blurred (sharpness %.1f, need ≥ %.0f): use a sharper photo", r.Sharpness, lim)
	})
	check(math.Abs(r.Yaw), R.MaxYaw, A.MaxYaw, false, func(lim float64) string {
		return fmt.Sprintf("head turned %.0f° sideways, need ≤ %.0f°: use a photo facing the camera", math.Abs(r.Yaw), lim)
	})
	check(math.Abs(r.Pitch), R.MaxPitch, A.MaxPitch, false, func(lim float64) string {
		return fmt.Sprintf("head tilted %.0f° up or down, need ≤ %.0f°: use a photo facing the camera", math.Abs(r.Pitch), lim)
	})
	check(math.Abs(r.Roll), R.MaxRoll, A.MaxRoll, false, func(lim float64) string {
		return fmt.Sprintf("head tilted %.0f° to the side, need ≤ %.0f°: use an upright photo", math.Abs(r.Roll), lim)
	})
	check(r.MeanLuma, R.MinMeanLuma, A.MinMeanLuma, true, func(lim float64) string {
		return fmt.Sprintf("face too dark (mean brightness %.0f of 255, need ≥ %.0f): use a better lit photo", r.MeanLuma, lim)
	})
	check(r.MeanLuma, R.MaxMeanLuma, A.MaxMeanLuma, false, func(lim float64) string {
		return fmt.Sprintf("face too bright (mean brightness %.0f of 255, need ≤ %.0f): use a photo with less light", r.MeanLuma, lim)
	})
	check(math.Max(r.Crushed, r.Blown), R.MaxClipped, A.MaxClipped, false, func(lim float64) string {
		return fmt.Sprintf("%.0f %% of the face is pure black or white, need ≤ %.0f %%: use a better exposed photo", 100*math.Max(r.Crushed, r.Blown), 100*lim)
	})
	check(detScore, l.MinDetScore, l.AcceptDetScore, true, func(lim float64) string {
		return fmt.Sprintf("face partly hidden or cut off (detector confidence %.2f, need ≥ %.2f): use a photo of the whole, uncovered face", detScore, lim)
	})
	for _, f := range r.Failures {
		if f == CheckOutside {
			j.Verdict, j.Score = Refused, 0
			j.Reasons = append(j.Reasons, "face box outside the image")
		}
	}
	return j
}
