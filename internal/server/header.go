package server

import (
	"encoding/binary"
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	errShortHeader = errors.New("server: request header truncated")
	errBadClientID = errors.New("server: bad client id length")
	errBadTags     = errors.New("server: bad tagged fields in request header")
)

// requestHeader is a request header parsed out of a frame. Its slices alias
// the frame.
type requestHeader struct {
	key, version int16 // -1 when the frame is too short to hold them
	corr         int32
	clientID     []byte
	nullClientID bool
	flexible     bool // header v2: tagged fields follow the client id
	body         []byte
}

// parseHeader parses request header v1 or v2 (see doc.go). On error the
// fields that were read are set, for the log line.
func parseHeader(frame []byte) (h requestHeader, err error) {
	h.key, h.version = -1, -1
	if len(frame) < 2 {
		return h, errShortHeader
	}
	h.key = int16(binary.BigEndian.Uint16(frame))
	if len(frame) < 4 {
		return h, errShortHeader
	}
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	if len(frame) < 10 {
		return h, errShortHeader
	}
	h.corr = int32(binary.BigEndian.Uint32(frame[4:]))
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	b := frame[10:]
	switch {
	case n == -1:
		h.nullClientID = true
	case n < 0:
		return h, errBadClientID
	case int(n) > len(b):
		return h, errShortHeader
	default:
		h.clientID, b = b[:n:n], b[n:]
	}
	// The client id stays a non-compact nullable string in header v2;
	// only the tagged fields are added (KIP-482).
	h.flexible = headerFlexible(h.key, h.version)
	if h.flexible {
		if b, err = skipTags(b); err != nil {
			return h, err
		}
	}
	h.body = b
	return h, nil
}

// skipTags skips a tagged-field section: a uvarint count, then per field a
// uvarint tag, a uvarint size and size bytes. The header defines no tags,
// so all are unknown and skipped, as Kafka does.
func skipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errBadTags
	}
	b = b[n:]
	for ; count > 0; count-- {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, errBadTags
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, errBadTags
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// keyInfo says, for one API key, the highest version kmsg knows and the
// first version with flexible (header v2) encoding, -1 if none.
type keyInfo struct {
	known   bool
	max     int16
	flexMin int16
}

// keyInfos is computed once from kmsg rather than calling
// kmsg.RequestForKey per request, which would allocate a request struct
// only to ask it one question.
var keyInfos = func() (t [kmsg.MaxKey + 1]keyInfo) {
	for k := range t {
		r := kmsg.RequestForKey(int16(k))
		if r == nil {
			continue
		}
		t[k] = keyInfo{known: true, max: r.MaxVersion(), flexMin: -1}
		for v := int16(0); v <= r.MaxVersion(); v++ {
			r.SetVersion(v)
			if r.IsFlexible() {
				t[k].flexMin = v
				break
			}
		}
	}
	return t
}()

// headerFlexible reports whether a request of this key and version uses
// request header v2. A version newer than kmsg knows is treated as the
// newest one (flexible versions are always "N+"), so a newer client's
// ApiVersions request still parses and can be answered with what we
// support. An unknown key is assumed to use header v1; the handler then
// rejects it. ControlledShutdown v0's header v0 (no client id) is not
// handled: Kafka 4 dropped that version.
func headerFlexible(key, version int16) bool {
	if key < 0 || int(key) >= len(keyInfos) || !keyInfos[key].known {
		return false
	}
	k := keyInfos[key]
	return k.flexMin >= 0 && min(version, k.max) >= k.flexMin
}
