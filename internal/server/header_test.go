package server

import (
	"errors"
	"testing"
)

func TestHeaderFlexible(t *testing.T) {
	for _, tc := range []struct {
		key, version int16
		want         bool
	}{
		{0, 8, false}, {0, 9, true}, {0, 11, true}, // Produce: flexible from v9
		{1, 11, false}, {1, 12, true}, // Fetch
		{3, 8, false}, {3, 9, true}, // Metadata
		{18, 2, false}, {18, 3, true}, {18, 99, true}, // ApiVersions, newer than kmsg
		{0, -1, false},
		{-1, 0, false}, {1000, 12, false}, {30000, 0, false}, // unknown keys: header v1
	} {
		if got := headerFlexible(tc.key, tc.version); got != tc.want {
			t.Errorf("headerFlexible(%d, %d) = %v, want %v", tc.key, tc.version, got, tc.want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frame    []byte
		err      error
		key, ver int16
		corr     int32
		clientID string
		null     bool
		body     string
	}{
		{name: "empty", frame: nil, err: errShortHeader, key: -1, ver: -1},
		{name: "key only", frame: []byte{0, 3, 0}, err: errShortHeader, key: 3, ver: -1},
		{name: "no client id", frame: []byte{0, 3, 0, 1, 0, 0, 0, 5, 0}, err: errShortHeader, key: 3, ver: 1},
		{name: "v1", frame: []byte{0, 3, 0, 1, 0, 0, 0, 5, 0, 2, 'i', 'd', 'B'}, key: 3, ver: 1, corr: 5, clientID: "id", body: "B"},
		{name: "v1 null id", frame: []byte{0, 3, 0, 1, 0, 0, 0, 5, 0xff, 0xff, 'B'}, key: 3, ver: 1, corr: 5, null: true, body: "B"},
		{name: "v1 id -2", frame: []byte{0, 3, 0, 1, 0, 0, 0, 5, 0xff, 0xfe, 'B'}, err: errBadClientID, key: 3, ver: 1},
		{name: "v1 id too long", frame: []byte{0, 3, 0, 1, 0, 0, 0, 5, 0, 2, 'i'}, err: errShortHeader, key: 3, ver: 1},
		{name: "v2 no tags", frame: []byte{0, 3, 0, 9, 0xff, 0xff, 0xff, 0xff, 0, 1, 'c', 0, 'B', 'B'}, key: 3, ver: 9, corr: -1, clientID: "c", body: "BB"},
		{name: "v2 tags", frame: []byte{0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 2, 0, 1, 'x', 7, 0, 'B'}, key: 3, ver: 9, corr: 1, null: true, body: "B"},
		{name: "v2 missing tags", frame: []byte{0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff}, err: errBadTags, key: 3, ver: 9},
		{name: "v2 tag past end", frame: []byte{0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 1, 0, 5, 'x'}, err: errBadTags, key: 3, ver: 9},
		{name: "v2 tag size huge", frame: []byte{0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, err: errBadTags, key: 3, ver: 9},
		{name: "v2 count huge", frame: []byte{0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f}, err: errBadTags, key: 3, ver: 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseHeader(tc.frame)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if h.key != tc.key || h.version != tc.ver {
				t.Errorf("key, version = %d, %d, want %d, %d", h.key, h.version, tc.key, tc.ver)
			}
			if err != nil {
				return
			}
			if h.corr != tc.corr || string(h.clientID) != tc.clientID || h.nullClientID != tc.null || string(h.body) != tc.body {
				t.Errorf("got corr %d id %q null %v body %q", h.corr, h.clientID, h.nullClientID, h.body)
			}
		})
	}
}

func TestBufPool(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 513, 4096, 1<<19 + 1, maxPooledFrame} {
		p := getBuf(n)
		if len(*p) != n || cap(*p)&(cap(*p)-1) != 0 || cap(*p) < 512 {
			t.Errorf("getBuf(%d): len %d cap %d", n, len(*p), cap(*p))
		}
		putBuf(p)
	}
	if p := getBuf(maxPooledFrame + 1); cap(*p) != maxPooledFrame+1 {
		t.Errorf("large buffer cap %d", cap(*p))
	} else {
		putBuf(p) // dropped, not pooled
	}
	if raceEnabled {
		return
	}
	if allocs := testing.AllocsPerRun(100, func() { putBuf(getBuf(3000)) }); allocs != 0 {
		t.Errorf("pooled get/put allocates %v times", allocs)
	}
}

// TestMapFrameCache: mappings of frames up to 16 MiB are reused, the cache
// never holds more than mapCacheBytes, and larger mappings go back to the
// OS.
func TestMapFrameCache(t *testing.T) {
	b, err := mapFrame(3 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 3<<20 || cap(b) != 4<<20 {
		t.Fatalf("3 MiB frame: len %d cap %d, want its 4 MiB class", len(b), cap(b))
	}
	b[len(b)-1] = 1 // writable
	addr := &b[0]
	unmapFrame(b)
	b, err = mapFrame(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if &b[0] != addr {
		t.Errorf("the cached 4 MiB mapping was not reused")
	}
	unmapFrame(b)

	var held [][]byte
	for range 2 * mapCacheBytes / (16 << 20) {
		b, err := mapFrame(16 << 20)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, b)
	}
	for _, b := range held {
		unmapFrame(b)
	}
	mapCache.Lock()
	n := mapCache.bytes
	mapCache.Unlock()
	if n > mapCacheBytes {
		t.Errorf("cache holds %d bytes, over its %d", n, mapCacheBytes)
	}

	big, err := mapFrame(99 << 20)
	if err != nil {
		t.Fatal(err)
	}
	big[len(big)-1] = 1
	unmapFrame(big)
	mapCache.Lock()
	if mapCache.bytes != n {
		t.Errorf("a 99 MiB mapping was cached: %d bytes, was %d", mapCache.bytes, n)
	}
	mapCache.Unlock()
}
