package pricing

import (
	_ "embed"
	"sync"
)

// The embedded catalog is generated from LiteLLM's price list and the
// hand-written overrides (source/, README.md); regenerate it with
// `go generate ./pipelines/pricing/`.
//go:generate go run ./gen

// defaultYAML is the embedded default catalog.
//
//go:embed default_prices.yaml
var defaultYAML []byte

// DefaultName is the name the embedded catalog is parsed under, as it
// appears in Catalog.Name and in error messages.
const DefaultName = "default_prices.yaml"

var defaultCatalog = sync.OnceValue(func() *Catalog {
	c, err := Parse(DefaultName, defaultYAML)
	if err != nil {
		panic("pricing: embedded default catalog is broken: " + err.Error())
	}
	return c
})

// Default returns the catalog embedded in the binary: the list prices of
// LiteLLM's community price list (thousands of hosted models) with
// costpipe's overrides (see default_prices.yaml for the sources and the
// snapshot date). It is parsed once and shared; it panics only
// if the embedded file is broken, which TestDefaultCatalog rules out.
func Default() *Catalog { return defaultCatalog() }

// DefaultYAML returns a copy of the embedded catalog's source, a starting
// point for a catalog of one's own.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }
