package mqtt

import (
	"context"
	"fmt"
	"time"

	"github.com/facegate/facegate/daemon/auth"
)

// authRequest converts a Signed request into daemon/auth's terms.
func authRequest(s Signed, deviceID string) (auth.Fields, auth.Request) {
	a := s.AuthFields()
	return auth.Fields{KeyID: a.KeyID, Timestamp: a.TS, Nonce: a.Nonce, Signature: a.Sig},
		auth.Request{Operation: s.Operation(), RequestID: s.ID(), Body: s.CanonicalBody(deviceID)}
}

// authError carries a daemon/auth failure with its reply code.
type authError struct {
	code Code
	err  error
}

func (e *authError) Error() string   { return e.err.Error() }
func (e *authError) Unwrap() error   { return e.err }
func (e *authError) ReplyCode() Code { return e.code }

// VerifyWith returns a Handlers.Authenticate that verifies requests for
// deviceID with v: replays map to code replay, every other failure to
// unauthorised.
func VerifyWith(v *auth.Verifier, deviceID string) func(context.Context, Signed) error {
	return func(_ context.Context, s Signed) error {
		f, r := authRequest(s, deviceID)
		if err := v.Verify(f, r); err != nil {
			return &authError{code: Code(auth.Code(err)), err: err}
		}
		return nil
	}
}

// Sign returns the Auth fields that authenticate s for deviceID with key k
// at time now (a fresh random nonce); for clients and tests. Set them on
// the request before sending it.
func Sign(k auth.Key, s Signed, deviceID string, now time.Time) (Auth, error) {
	_, r := authRequest(s, deviceID)
	f, err := auth.Sign(k, r, now)
	if err != nil {
		return Auth{}, fmt.Errorf("sign %s %s: %w", s.Operation(), s.ID(), err)
	}
	return Auth{KeyID: f.KeyID, TS: f.Timestamp, Nonce: f.Nonce, Sig: f.Signature}, nil
}
