// Package outbox is a durable, bounded, in-order on-disk queue for events
// that must reach the MQTT broker: an fsync'd append-only log of segment
// files with length+CRC framing, and a small state file holding the last
// acknowledged sequence number.
//
// Guarantees and policy:
//   - Append returns only after the record is written and fsync'd (unless
//     Options.NoSync), so an event survives a crash or power loss.
//   - Records are delivered by Next in sequence order; Ack(seq) marks every
//     record up to seq delivered. A record is removed only after its Ack
//     (the caller acks on PUBACK), so delivery is at least once: a crash
//     between PUBACK and the state write replays the record (a QoS 1
//     duplicate, recognisable by its sequence number).
//   - A torn or corrupt record (crash mid-write) is detected by its CRC or
//     length on Open; the segment is truncated there and a warning logged.
//   - Full policy (MaxBytes): the oldest whole segment is deleted, its
//     undelivered records counted in Dropped (persisted) and logged. The
//     newest events are kept, because they are the ones an operator acts on
//     when the link comes back; the loss is visible as a gap in sequence
//     numbers and in the dropped counter published on stats.
//
// It depends only on the standard library and must not import any other
// facegate package.
package outbox
