package serve

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/producers/ingest"
	"github.com/costpipe/costpipe/render"
)

// errForbidden is a tenant key asking for another tenant. Its message names
// no tenant, neither the key's nor the one asked for.
var errForbidden = errors.New("forbidden: this API key reads only its own tenant")

// authenticate returns the tenant the request's key is bound to
// (ingest.AnyTenant for every tenant). Keys are looked up by their SHA-256
// digest (ingest.Keys), so the time a lookup takes says nothing about how
// much of a key was right.
func (s *Server) authenticate(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errors.New("cannot authenticate: missing API key, send \"Authorization: Bearer KEY\"")
	}
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		return "", errors.New("cannot authenticate: the Authorization header is not \"Bearer KEY\"")
	}
	tenant, ok := s.keys.Keys().Tenant(strings.TrimSpace(key))
	if !ok {
		return "", errors.New("cannot authenticate: unknown API key")
	}
	return tenant, nil
}

// restrict confines where to tenant: for a key bound to one tenant, every
// tenant condition must name that tenant (errForbidden otherwise) and the
// condition tenant=TENANT is added, so every total, share, series and
// list is computed over that tenant's usage only. conds, when not nil,
// gets the condition too. A "*" key changes nothing.
func restrict(tenant string, where map[analytics.Dim][]string, conds *[]render.Filter) (map[analytics.Dim][]string, error) {
	if tenant == ingest.AnyTenant {
		return where, nil
	}
	for _, v := range where[analytics.DimTenant] {
		if v != tenant {
			return nil, errForbidden
		}
	}
	out := make(map[analytics.Dim][]string, len(where)+1)
	for d, vs := range where {
		out[d] = vs
	}
	out[analytics.DimTenant] = []string{tenant}
	if conds != nil {
		*conds = slices.DeleteFunc(slices.Clone(*conds), func(f render.Filter) bool { return f.Dim == analytics.DimTenant })
		*conds = append(*conds, render.Filter{Dim: analytics.DimTenant, Value: tenant})
	}
	return out, nil
}
