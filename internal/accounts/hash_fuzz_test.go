package accounts

import "testing"

// FuzzDecodeHash: the stored argon2id hash string is read strictly — it
// never panics, and what it accepts is exactly what encodeHash writes for
// the parameters, salt and key it read back (one spelling per hash), within
// the bounds a verification may cost.
func FuzzDecodeHash(f *testing.F) {
	f.Add(encodeHash(DefaultHashParams, []byte("0123456789abcdef"), make([]byte, 32)))
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=+64,t=1,p=1$c2FsdA$a2V5a2V5a2V5a2V5")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := decodeHash(s)
		if err != nil {
			return
		}
		if p.MemoryKiB == 0 || p.MemoryKiB > 1<<21 || p.Iterations == 0 || p.Iterations > maxHashIterations ||
			p.Parallelism == 0 || len(salt) == 0 || len(key) < 16 {
			t.Fatalf("accepted out-of-bounds parameters %+v (salt %d, key %d bytes) from %q", p, len(salt), len(key), s)
		}
		if again := encodeHash(p, salt, key); again != s {
			t.Fatalf("accepted %q, which is written %q", s, again)
		}
	})
}
