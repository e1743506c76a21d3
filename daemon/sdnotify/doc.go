// Package sdnotify speaks systemd's sd_notify protocol: READY=1 once the
// daemon really serves, STOPPING=1 on shutdown, STATUS= lines, and WATCHDOG=1
// keep-alives sent by a Watchdog runner only while the pipeline makes
// progress (frames captured and inferences run), so a hung camera or model
// gets the service restarted instead of hidden behind a bare ticker.
//
// The protocol is implemented here (a datagram to the unix socket named by
// $NOTIFY_SOCKET, abstract when it starts with '@') with the semantics of
// coreos/go-systemd's daemon package: not running under systemd is not an
// error, every call then reports (false, nil).
//
// sdnotify is pure Go and depends only on the standard library; it must not
// import infer, capture or any other facegate package.
package sdnotify
