// Package store keeps the gallery of enrolled people in an embedded,
// crash-safe bbolt database file under the state directory. Person records
// and their templates (float32 embeddings tagged with the model name and
// version that produced them) are encrypted at rest with AES-256-GCM: a
// random 96-bit nonce per record and the record's bucket and key as
// additional data, so ciphertexts cannot be swapped between records. Each
// record names the key id it was sealed with, so keys can be rotated (Rekey);
// opening with a wrong key fails with ErrWrongKey instead of returning
// garbage.
//
// Every mutation is one bbolt transaction: a crash at any point (kill -9,
// power loss) leaves either the old or the new state. The file is created
// with mode 0600 in a directory with mode 0700.
//
// store is pure Go (CGO_ENABLED=0 builds it). It must not import infer or
// daemon; key material comes in as bytes (daemon/auth loads key files and
// systemd credentials).
package store
