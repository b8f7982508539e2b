package ingest

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/costpipe/costpipe/schemas"
)

// AnyTenant, in a key file's tenant column, binds a key to every tenant.
const AnyTenant = "*"

// maxKeyLines bounds the lines of a key file, so a wrong path (a log file,
// /dev/zero) fails fast instead of filling memory.
const maxKeyLines = 1 << 20

// Keys maps API keys to the tenant each is bound to. Keys are held only as
// SHA-256 hashes, so a lookup takes the same time whatever prefix of a key
// matches, and a memory dump does not reveal them.
//
// A Keys is immutable once built and safe for concurrent use.
type Keys struct {
	byHash map[[sha256.Size]byte]string
}

// LoadKeys reads a key file; see ParseKeys for the format. Errors name the
// file and, for a bad line, its line number.
func LoadKeys(path string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open API key file: %w", err)
	}
	defer f.Close()
	return ParseKeys(f, path)
}

// ParseKeys reads API keys, one "KEY TENANT" pair per line separated by
// spaces or tabs. TENANT is a tenant name or "*" for every tenant. Blank
// lines are skipped, and "#" starts a comment that runs to the end of the
// line when it begins a field (so a key may contain "#" but not start with
// it). A key may appear only once. name, usually the file path, prefixes
// errors as "name:line: ...". The error never quotes a key.
func ParseKeys(r io.Reader, name string) (*Keys, error) {
	k := &Keys{byHash: make(map[[sha256.Size]byte]string)}
	firstLine := make(map[[sha256.Size]byte]int)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		if line > maxKeyLines {
			return nil, fmt.Errorf("%s: cannot read API key file: more than %d lines", name, maxKeyLines)
		}
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:i]
				break
			}
		}
		switch len(fields) {
		case 0:
			continue
		case 2:
		default:
			return nil, fmt.Errorf("%s:%d: cannot parse API key line: want \"KEY TENANT\", found %d fields", name, line, len(fields))
		}
		key, tenant := fields[0], fields[1]
		if tenant != AnyTenant {
			if len(tenant) > schemas.MaxTenantLen || !utf8.ValidString(tenant) {
				return nil, fmt.Errorf("%s:%d: cannot use tenant %q: must be valid UTF-8 of at most %d bytes", name, line, tenant, schemas.MaxTenantLen)
			}
			// An event's tenant may hold no control character (the
			// contract), so a key bound to such a tenant could write nothing.
			if !schemas.ValidText(tenant) {
				return nil, fmt.Errorf("%s:%d: cannot use tenant %q: %s (a tenant may hold none, as in events)", name, line, tenant, controlChar(tenant))
			}
		}
		h := sha256.Sum256([]byte(key))
		if first, dup := firstLine[h]; dup {
			return nil, fmt.Errorf("%s:%d: cannot use API key: it is already on line %d", name, line, first)
		}
		firstLine[h] = line
		k.byHash[h] = tenant
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: cannot read API key file: line longer than 64 KiB", name, line+1)
		}
		return nil, fmt.Errorf("%s: cannot read API key file: %w", name, err)
	}
	if len(k.byHash) == 0 {
		return nil, fmt.Errorf("%s: cannot use API key file: it holds no keys", name)
	}
	return k, nil
}

// controlChar names the first control character of s (Unicode category
// Cc: C0, DEL, C1) and its byte offset.
func controlChar(s string) string {
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character U+%04X at byte %d", r, i)
		}
	}
	return "a control character"
}

// Len returns the number of keys.
func (k *Keys) Len() int { return len(k.byHash) }

// Tenant returns the tenant key is bound to (AnyTenant for every tenant),
// and false for an unknown key.
func (k *Keys) Tenant(key string) (string, bool) {
	t, _, ok := k.lookup(key)
	return t, ok
}

// keyHash is the SHA-256 of an API key, which names it in the gateway.
type keyHash = [sha256.Size]byte

// lookup is Tenant, with the key's hash.
func (k *Keys) lookup(key string) (string, keyHash, bool) {
	h := sha256.Sum256([]byte(key))
	t, ok := k.byHash[h]
	return t, h, ok
}
