package pricing

import (
	_ "embed"
	"sync"
)

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

// Default returns the catalog embedded in the binary: current public list
// prices of common hosted models (see default_prices.yaml for sources and
// the date they were taken). It is parsed once and shared; it panics only
// if the embedded file is broken, which TestDefaultCatalog rules out.
func Default() *Catalog { return defaultCatalog() }

// DefaultYAML returns a copy of the embedded catalog's source, a starting
// point for a catalog of one's own.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }
