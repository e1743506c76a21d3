// Package daemon is the gate service: configuration from the environment,
// the capture → detect → quality → embed → match → decide pipeline,
// decisions (1:N and 1:1 claims, N-of-M agreement, cooldowns), MQTT events,
// stats and remote enrollment, and the systemd lifecycle.
//
// It wires every other package together and is the only place, besides
// cmd/facegate, that may import all of them.
package daemon
