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
//
// The request's fields are validated first, by the decoders' own rules: a
// client cannot sign a request the gate would refuse as malformed.
func Sign(k auth.Key, s Signed, deviceID string, now time.Time) (Auth, error) {
	if err := validateFields(s); err != nil {
		return Auth{}, fmt.Errorf("sign %s: %w", s.Operation(), err)
	}
	_, r := authRequest(s, deviceID)
	f, err := auth.Sign(k, r, now)
	if err != nil {
		return Auth{}, fmt.Errorf("sign %s %s: %w", s.Operation(), s.ID(), err)
	}
	return Auth{KeyID: f.KeyID, TS: f.Timestamp, Nonce: f.Nonce, Sig: f.Signature}, nil
}

// AdmitWith returns a Handlers.Admit that checks requests for deviceID with
// v without accepting them (auth.Verifier.Check): forged, stale or already
// accepted requests are refused before they take a queue slot.
func AdmitWith(v *auth.Verifier, deviceID string) func(Signed) error {
	return func(s Signed) error {
		f, r := authRequest(s, deviceID)
		if err := v.Check(f, r); err != nil {
			return &authError{code: Code(auth.Code(err)), err: err}
		}
		return nil
	}
}
