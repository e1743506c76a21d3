// Package embed measures embedding latency and throughput per model and
// batch size, and with Python set runs the same SavedModel with Python
// TensorFlow (bench/python_tf.py as a child process) interleaved round by
// round, to report facegate/Python on the same machine at the same time
// (`facegate bench`, `make bench-embed`).
//
// It may depend on bench and infer (it loads the models); never on
// capture or daemon.
package embed
