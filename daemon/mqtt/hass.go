package mqtt

import (
	"encoding/json"
	"fmt"
)

// HADevice is the device block of a Home Assistant discovery config.
type HADevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version,omitempty"`
}

// HAOrigin names the software that published a discovery config.
type HAOrigin struct {
	Name      string `json:"name"`
	SWVersion string `json:"sw_version,omitempty"`
}

// HAConfig is one Home Assistant MQTT discovery config (sensor or
// binary_sensor), published retained to
// <discovery_prefix>/<component>/<node_id>/<object_id>/config.
type HAConfig struct {
	Name                string   `json:"name"`
	UniqueID            string   `json:"unique_id"`
	StateTopic          string   `json:"state_topic"`
	ValueTemplate       string   `json:"value_template"`
	JSONAttributesTopic string   `json:"json_attributes_topic,omitempty"`
	AvailabilityTopic   string   `json:"availability_topic"`
	PayloadAvailable    string   `json:"payload_available"`
	PayloadNotAvailable string   `json:"payload_not_available"`
	PayloadOn           string   `json:"payload_on,omitempty"`
	PayloadOff          string   `json:"payload_off,omitempty"`
	OffDelay            int      `json:"off_delay,omitempty"`
	DeviceClass         string   `json:"device_class,omitempty"`
	StateClass          string   `json:"state_class,omitempty"`
	Icon                string   `json:"icon,omitempty"`
	Device              HADevice `json:"device"`
	Origin              HAOrigin `json:"origin"`
}

type message struct {
	topic    string
	payload  []byte
	retained bool
}

// haDiscovery returns the retained discovery configs that make a door
// appear in Home Assistant: a binary_sensor that is on for 5 s after each
// granted decision, sensors for the last decision, last subject and last
// score, and an attempts counter from stats. All use the status topic for
// availability, so the entities go unavailable with the last will.
func haDiscovery(cfg *Config, t Topics) ([]message, error) {
	node := "facegate_" + cfg.DeviceID
	dev := HADevice{
		Identifiers:  []string{node},
		Name:         "facegate " + cfg.DeviceID,
		Manufacturer: "facegate",
		Model:        "face verification door",
		SWVersion:    cfg.Version,
	}
	base := func(object, name, stateTopic, tmpl string) HAConfig {
		return HAConfig{
			Name:                name,
			UniqueID:            node + "_" + object,
			StateTopic:          stateTopic,
			ValueTemplate:       tmpl,
			AvailabilityTopic:   t.Status,
			PayloadAvailable:    StatusOnline,
			PayloadNotAvailable: StatusOffline,
			Device:              dev,
			Origin:              HAOrigin{Name: "facegate", SWVersion: cfg.Version},
		}
	}
	granted := base("granted", "Access granted", t.Events, "{{ 'ON' if value_json.decision == 'granted' else 'OFF' }}")
	granted.PayloadOn, granted.PayloadOff, granted.OffDelay = "ON", "OFF", 5
	granted.Icon = "mdi:door-open"
	decision := base("decision", "Last decision", t.Events, "{{ value_json.decision }}")
	decision.JSONAttributesTopic = t.Events
	decision.Icon = "mdi:face-recognition"
	subject := base("subject", "Last subject", t.Events,
		"{{ value_json.subject.name if value_json.subject is defined and value_json.subject.name else (value_json.subject.id if value_json.subject is defined else 'none') }}")
	subject.Icon = "mdi:account"
	score := base("score", "Last score", t.Events, "{{ value_json.score }}")
	score.StateClass = "measurement"
	attempts := base("attempts", "Attempts", t.Stats, "{{ value_json.attempts }}")
	attempts.StateClass = "total_increasing"
	fmr := base("fmr", "Estimated FMR", t.Stats, "{{ value_json.error_rates.fmr.estimate }}")

	items := []struct {
		component string
		object    string
		cfg       HAConfig
	}{
		{"binary_sensor", "granted", granted},
		{"sensor", "decision", decision},
		{"sensor", "subject", subject},
		{"sensor", "score", score},
		{"sensor", "attempts", attempts},
		{"sensor", "fmr", fmr},
	}
	out := make([]message, 0, len(items))
	for _, it := range items {
		b, err := json.Marshal(it.cfg)
		if err != nil {
			return nil, fmt.Errorf("home assistant discovery %s: %w", it.object, err)
		}
		out = append(out, message{
			topic:    fmt.Sprintf("%s/%s/%s/%s/config", cfg.HADiscoveryPrefix, it.component, node, it.object),
			payload:  b,
			retained: true,
		})
	}
	return out, nil
}
