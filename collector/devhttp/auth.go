package devhttp

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/basip/basip_exporter/collector/device"
)

// The auths an Authed conn speaks.
const (
	Basic  = "basic"
	Digest = "digest"
)

// Back-off after the device rejects the credentials: no request is sent
// for loginBackoffMin, doubling up to loginBackoffMax, so a wrong password
// never hammers a device (some lock the account after a few failures).
const (
	loginBackoffMin = time.Minute
	loginBackoffMax = time.Hour
)

// Credentials say how an Authed conn authenticates.
type Credentials struct {
	Auth     string // Basic or Digest
	Username string
	Password string
	// Now is the clock, for tests; time.Now when nil.
	Now func() time.Time
}

// Authed is a Conn whose requests carry HTTP Basic or Digest credentials.
type Authed struct {
	*Conn
	cred  Credentials
	basic string // the Basic Authorization header
	now   func() time.Time

	mu        sync.Mutex
	challenge *challenge // Digest: the challenge in use; nil before the first 401
	// suspension is the back-off after a rejection, shared with the
	// Authed conns to the same device's other ports (see OtherPort).
	suspension *suspension
}

// suspension is a back-off after the device rejected the credentials.
type suspension struct {
	mu           sync.Mutex
	backoff      time.Duration
	blockedUntil time.Time
}

// OtherPort returns an Authed conn to another port of the same device
// (o.BaseURL), with the same credentials and the same back-off: a
// rejection on one suspends both, so a wrong password costs one refused
// request, not one a port.
func (a *Authed) OtherPort(o Options) *Authed {
	b := NewAuthed(o, a.cred)
	b.suspension = a.suspension
	return b
}

// NewAuthed returns a Conn to one device that authenticates with cred. Its
// errors are redacted of the password in every form it is sent and of the
// Digest challenge in use, by value, besides o.Secrets.
func NewAuthed(o Options, cred Credentials) *Authed {
	a := &Authed{cred: cred, now: cred.Now, suspension: &suspension{}}
	forms := secretForms(cred.Username, cred.Password)
	extra := o.Secrets
	o.Secrets = func() []string {
		v := slices.Clip(forms)
		a.mu.Lock()
		if ch := a.challenge; ch != nil {
			v = append(v, ch.nonce, ch.opaque)
		}
		a.mu.Unlock()
		if extra != nil {
			v = append(v, extra()...)
		}
		return v
	}
	a.Conn = New(o)
	if a.now == nil {
		a.now = time.Now
	}
	if cred.Auth == Basic {
		a.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(cred.Username+":"+cred.Password))
	}
	return a
}

// secretForms is the password in every form a client sends it or a device
// may quote it: plain and query-escaped, its MD5 in hex of both cases, and
// the base64 of user:password of the Basic header, padded and not.
func secretForms(user, password string) []string {
	if password == "" {
		return nil
	}
	sum := md5.Sum([]byte(password))
	h := hex.EncodeToString(sum[:])
	userPass := []byte(user + ":" + password)
	forms := []string{password, url.QueryEscape(password), h, strings.ToUpper(h),
		base64.StdEncoding.EncodeToString(userPass), base64.RawStdEncoding.EncodeToString(userPass)}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// SecretForms is secretForms, for the clients that log in otherwise
// (BAS-IP's token).
func SecretForms(user, password string) []string { return secretForms(user, password) }

// Fetch sends r with credentials and returns the body of a 200. Another
// status is a StatusError (a 404 one too: the caller may read it as "not
// supported"); a rejection of the credentials is a ReasonAuth error and
// suspends requests for a back-off.
func (a *Authed) Fetch(ctx context.Context, r *Request, res *device.Result) ([]byte, error) {
	op := r.Op()
	if err := a.blocked(op); err != nil {
		return nil, err
	}
	var resp *Response
	var err error
	if a.cred.Auth == Digest {
		resp, err = a.digest(ctx, r, res)
	} else {
		resp, err = a.send(ctx, r, a.basic, res)
	}
	switch {
	case err != nil:
		return nil, err
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		a.rejected(res)
		return nil, AuthError(op, resp.Status, "device rejected the "+a.cred.Auth+" credentials: %s", resp.Body, a.Secrets())
	case resp.Status != http.StatusOK:
		return nil, StatusError(op, resp.Status)
	}
	a.suspension.mu.Lock()
	a.suspension.backoff, a.suspension.blockedUntil = 0, time.Time{}
	a.suspension.mu.Unlock()
	return resp.Body, nil
}

// send sends r with the Authorization header authz (none when empty).
func (a *Authed) send(ctx context.Context, r *Request, authz string, res *device.Result) (*Response, error) {
	rr := *r
	rr.Header = r.Header.Clone()
	if authz != "" {
		if rr.Header == nil {
			rr.Header = http.Header{}
		}
		rr.Header.Set("Authorization", authz)
	}
	resp, err := a.Do(ctx, &rr, res)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// digest sends r with Digest credentials. With a challenge kept from an
// earlier request the request goes at once, with the next nc; a 401 to it
// (the nonce expired, stale or not) is answered once more with the new
// challenge. Without one, the first request goes without credentials to
// get the challenge. A 401 to an answer to a fresh challenge is returned:
// the credentials are wrong.
func (a *Authed) digest(ctx context.Context, r *Request, res *device.Result) (*Response, error) {
	a.mu.Lock()
	ch := a.challenge
	a.mu.Unlock()
	fresh := ch == nil
	if fresh {
		resp, err := a.send(ctx, r, "", res)
		if err != nil || resp.Status != http.StatusUnauthorized {
			return resp, err
		}
		if ch = parseChallenges(resp.Header); ch == nil {
			return nil, AuthError(r.Op(), resp.Status, "device sent no Digest challenge this client can answer: %s", resp.Body, a.Secrets())
		}
	}
	resp, err := a.sendDigest(ctx, r, ch, res)
	if err != nil || resp.Status != http.StatusUnauthorized || fresh {
		return resp, err
	}
	// The kept nonce was refused: take the new challenge, once.
	if ch = parseChallenges(resp.Header); ch == nil {
		return resp, nil
	}
	return a.sendDigest(ctx, r, ch, res)
}

// sendDigest sends r answering ch.
func (a *Authed) sendDigest(ctx context.Context, r *Request, ch *challenge, res *device.Result) (*Response, error) {
	authz, err := a.answer(ch, r)
	if err != nil {
		return nil, &device.Error{Reason: device.ReasonAuth, Op: r.Op(), Err: err}
	}
	return a.send(ctx, r, authz, res)
}

// answer keeps ch as the challenge in use and returns the Authorization
// header for r.
func (a *Authed) answer(ch *challenge, r *Request) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.challenge = ch
	return ch.authorization(a.cred.Username, a.cred.Password, r.method(), r.Target)
}

// blocked is the error for a request while the back-off after a rejection
// of the credentials lasts, nil after it.
func (a *Authed) blocked(op string) error {
	a.suspension.mu.Lock()
	until := a.suspension.blockedUntil
	a.suspension.mu.Unlock()
	if a.now().Before(until) {
		return &device.Error{Reason: device.ReasonAuth, Op: op, Err: fmt.Errorf("requests suspended until %s after the device rejected the credentials", until.UTC().Format(time.RFC3339))}
	}
	return nil
}

// rejected counts a rejection of the credentials, extends the back-off and
// drops the Digest challenge.
func (a *Authed) rejected(res *device.Result) {
	res.AuthFailures++
	a.suspension.mu.Lock()
	a.suspension.backoff = min(max(2*a.suspension.backoff, loginBackoffMin), loginBackoffMax)
	a.suspension.blockedUntil = a.now().Add(a.suspension.backoff)
	a.suspension.mu.Unlock()
	a.mu.Lock()
	a.challenge = nil
	a.mu.Unlock()
}
