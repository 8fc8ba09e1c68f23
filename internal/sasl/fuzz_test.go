package sasl

import (
	"errors"
	"testing"
)

// FuzzServers feeds arbitrary client messages to the PLAIN and SCRAM
// servers. Invariants: no panic; a step that fails fails with
// ErrAuthenticationFailed; no exchange completes (no message can prove a
// password without knowing it: the user's only credential is random).
// The seed corpus is in testdata/fuzz/FuzzServers.
func FuzzServers(f *testing.F) {
	f.Add(uint8(0), []byte("\x00alice\x00secret"), []byte(nil))
	f.Add(uint8(1), []byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add(uint8(2), []byte("y,a=alice,n=alice,r=abc"), []byte("c=eSxhPWFsaWNlLA==,r=abcX,p="))
	st := store{}
	st.add(f, "alice", string(NewSalt()), SHA256, 4096)
	st.add(f, "alice", string(NewSalt()), SHA512, 4096)
	ms := New(Config{Lookup: st.lookup})
	names := []string{Plain, ScramSHA256, ScramSHA512}
	f.Fuzz(func(t *testing.T, which uint8, first, second []byte) {
		s, _ := ms.NewServer(names[int(which)%len(names)])
		for _, msg := range [][]byte{first, second} {
			_, done, err := s.Step(msg)
			if done {
				t.Fatalf("authenticated without the password: %q %q", first, second)
			}
			if err != nil {
				if !errors.Is(err, ErrAuthenticationFailed) {
					t.Fatalf("error %v is not ErrAuthenticationFailed", err)
				}
				return
			}
		}
	})
}
