package decision

import (
	"fmt"
	"math"
)

// Metrics a tower's raw score may use.
const (
	// Cosine similarity: higher is more similar.
	Cosine = "cosine"
	// Euclidean distance: lower is more similar.
	Euclidean = "euclidean"
)

// Tower is one embedder of the Siamese pair and the statistics that
// normalise its raw score: the mean and standard deviation of its scores
// on impostor pairs (different people).
type Tower struct {
	// Name is the short name heads are keyed by, e.g. "dlib" or "sface".
	Name string `json:"name"`
	// Model is the model's directory name, e.g. "dlib-resnet-v1".
	Model string `json:"model"`
	// Metric is Cosine (higher is better) or Euclidean (lower is better).
	Metric string `json:"metric"`
	// Flip: the tower's scores were measured with flip test-time
	// augmentation (infer.Embedder.SetFlip); the daemon must embed the
	// same way for the head and thresholds to hold.
	Flip         bool    `json:"flip,omitempty"`
	ImpostorMean float64 `json:"impostor_mean"`
	ImpostorStd  float64 `json:"impostor_std"`
}

// Z is the raw score normalised so that higher is more similar: how many
// impostor standard deviations it lies on the genuine side of the impostor
// mean.
func (t Tower) Z(score float64) float64 {
	if t.Metric == Euclidean {
		return (t.ImpostorMean - score) / t.ImpostorStd
	}
	return (score - t.ImpostorMean) / t.ImpostorStd
}

// Validate reports a tower that cannot normalise scores.
func (t Tower) Validate() error {
	switch {
	case t.Name == "" || t.Model == "":
		return fmt.Errorf("tower %q/%q: name and model are required", t.Name, t.Model)
	case t.Metric != Cosine && t.Metric != Euclidean:
		return fmt.Errorf("tower %s: metric %q is neither %q nor %q", t.Name, t.Metric, Cosine, Euclidean)
	case !finite(t.ImpostorMean) || !finite(t.ImpostorStd) || t.ImpostorStd <= 0:
		return fmt.Errorf("tower %s: impostor mean %v and std %v must be finite, std > 0", t.Name, t.ImpostorMean, t.ImpostorStd)
	}
	for _, r := range t.Name {
		if r == '+' {
			return fmt.Errorf("tower %s: a name must not contain '+'", t.Name)
		}
	}
	return nil
}

// Head is the sigmoid head: a logistic regression on the z-scores of the
// towers it was fitted for, in the order of its key.
type Head struct {
	Bias    float64   `json:"bias"`
	Weights []float64 `json:"weights"`
}

// Logit is Bias + Σ Weights[i]·z[i], the log-odds of "same person". z must
// have one value per weight.
func (h Head) Logit(z []float64) float64 {
	l := h.Bias
	for i, w := range h.Weights {
		l += w * z[i]
	}
	return l
}

// Prob is the calibrated probability of "same person": sigmoid(Logit).
func (h Head) Prob(z []float64) float64 { return Sigmoid(h.Logit(z)) }

// Sigmoid is 1/(1+e^-x).
func Sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
