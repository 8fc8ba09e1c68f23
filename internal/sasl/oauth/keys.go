package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a key set read from a file or an endpoint.
const maxJWKSBytes = 1 << 20

// missRefreshBackoff is how soon after a fetch an unknown kid may cause
// another: an identity provider that rotated its keys is seen at once,
// while clients sending made-up kids cannot make the broker hammer it.
const missRefreshBackoff = 10 * time.Second

// keySource holds the JWKS of sasl.oauthbearer.jwks.endpoint.url, as
// Kafka's RefreshingHttpsJwks: fetched at start, again every refresh
// interval, and early when a token names a kid it lacks. A file: URL is
// also read again as soon as the file's size or modification time
// changes, so a rotated key set is used at once. Safe for concurrent use;
// a fetch runs under mu, so concurrent authentications wait for it rather
// than fetch too.
type keySource struct {
	url     *url.URL
	refresh time.Duration
	now     func() time.Time
	client  *http.Client

	mu struct {
		sync.Mutex
		keys    []jose.JSONWebKey
		fetched time.Time // when keys were read
		stamp   fileStamp // of the file they were read from
	}
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func newKeySource(raw string, refresh time.Duration, now func() time.Time) (*keySource, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("oauth: sasl.oauthbearer.jwks.endpoint.url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "file", "http", "https":
	default:
		return nil, fmt.Errorf("oauth: sasl.oauthbearer.jwks.endpoint.url %q: want a file:, http: or https: URL", raw)
	}
	if refresh <= 0 {
		refresh = time.Hour
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// Keys asked for over https must not arrive over http.
			if u.Scheme == "https" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect from https to %s refused", req.URL.Redacted())
			}
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
	ks := &keySource{url: u, refresh: refresh, now: now, client: client}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if err := ks.loadLocked(); err != nil {
		return nil, fmt.Errorf("oauth: sasl.oauthbearer.jwks.endpoint.url %q: %w", raw, err)
	}
	return ks, nil
}

// key returns the key kid names for alg. A token without a kid may use
// the set's only key that fits alg, so that a one-key set needs no kid.
func (ks *keySource) key(kid string, alg jose.SignatureAlgorithm) (any, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.maybeReloadLocked(false)
	k, err := ks.findLocked(kid, alg)
	if errors.Is(err, errUnknownKid) && ks.maybeReloadLocked(true) {
		k, err = ks.findLocked(kid, alg)
	}
	return k, err
}

var errUnknownKid = errors.New("no key with the token's kid in the JWKS")

func (ks *keySource) findLocked(kid string, alg jose.SignatureAlgorithm) (any, error) {
	var found []jose.JSONWebKey
	for _, k := range ks.mu.keys {
		if (kid == "" || k.KeyID == kid) && (k.Algorithm == "" || k.Algorithm == string(alg)) && keyFits(k.Key, alg) {
			found = append(found, k)
		}
	}
	switch {
	case len(found) == 1:
		return found[0].Key, nil
	case kid == "" && len(found) > 1:
		return nil, fmt.Errorf("JWT has no kid and the JWKS has %d keys for %s", len(found), alg)
	case kid == "":
		return nil, fmt.Errorf("JWT has no kid and the JWKS has no key for %s", alg)
	}
	for _, k := range ks.mu.keys {
		if k.KeyID == kid {
			return nil, fmt.Errorf("JWKS key %q does not fit alg %s (its type, curve, size or alg differ)", kid, alg)
		}
	}
	return nil, fmt.Errorf("%w: %q", errUnknownKid, kid)
}

// maybeReloadLocked reads the key set again when the refresh interval has
// passed, when its file changed, or (miss) on an unknown kid once
// missRefreshBackoff has passed. A failed read keeps the keys it had, as
// Kafka keeps serving the last good JWKS; it reports whether the keys
// were read.
func (ks *keySource) maybeReloadLocked(miss bool) bool {
	age := ks.now().Sub(ks.mu.fetched)
	due := age >= ks.refresh || (miss && age >= missRefreshBackoff)
	if !due && ks.url.Scheme == "file" {
		st, err := ks.statLocked()
		due = err == nil && st != ks.mu.stamp
	}
	if !due {
		return false
	}
	if err := ks.loadLocked(); err != nil {
		// Try again at the next token, not at every one.
		ks.mu.fetched = ks.now()
		return false
	}
	return true
}

func (ks *keySource) path() string {
	if ks.url.Opaque != "" {
		return ks.url.Opaque // file:relative/path
	}
	return ks.url.Path
}

func (ks *keySource) statLocked() (fileStamp, error) {
	fi, err := os.Stat(ks.path())
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime()}, nil
}

func (ks *keySource) loadLocked() error {
	var (
		data  []byte
		stamp fileStamp
		err   error
	)
	if ks.url.Scheme == "file" {
		// Stat first: a file replaced between the stat and the read is
		// read again at the next token.
		if stamp, err = ks.statLocked(); err != nil {
			return err
		}
		data, err = readAtMost(ks.path())
	} else {
		data, err = ks.fetch()
	}
	if err != nil {
		return err
	}
	keys, err := ParseJWKS(data)
	if err != nil {
		return err
	}
	ks.mu.keys, ks.mu.fetched, ks.mu.stamp = keys, ks.now(), stamp
	return nil
}

func readAtMost(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxJWKSBytes))
}

func (ks *keySource) fetch() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ks.client.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", ks.url.Redacted(), resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
}

// ParseJWKS returns the public signature keys of a JSON Web Key Set (RFC
// 7517). A key of a type go-jose does not know, a private or symmetric
// key, or one whose use is not sig is skipped, as jose4j skips what it
// cannot use, rather than failing the whole set; a set with no usable key
// is an error.
func ParseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var out []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("JWKS has no usable public signature key (of %d)", len(set.Keys))
	}
	return out, nil
}
