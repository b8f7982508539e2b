package ingest

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// KeyRing holds the API keys requests are checked against and reloads them
// from their file (on SIGHUP, by the commands): a new key works from the
// next request on and a removed one is refused; requests already
// authenticated keep their tenant, and no request waits for a reload. A
// file that cannot be read or parsed changes nothing: the old keys stay.
// The ingest gateway and `costpipe serve` share it.
//
// Its metrics, named after the component: PREFIX_keys_reload_total{result}
// (ok, error) and PREFIX_keys (keys in use). Safe for concurrent use; one
// reload runs at a time.
type KeyRing struct {
	file    string
	keys    atomic.Pointer[Keys]
	mu      sync.Mutex // one reload at a time
	reloads *prometheus.CounterVec
	inUse   prometheus.Gauge
}

// NewKeyRing starts a ring with keys, read from file ("" when they came
// from elsewhere: Reload then fails). prefix names its metrics, e.g.
// "costpipe_ingest".
func NewKeyRing(keys *Keys, file, prefix string) *KeyRing {
	r := &KeyRing{file: file,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "_keys_reload_total",
			Help: "Reloads of the API key file (SIGHUP), by result: ok, or error (the old keys stay)."}, []string{"result"}),
		inUse: prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "_keys", Help: "API keys in use."}),
	}
	r.reloads.WithLabelValues("ok")
	r.reloads.WithLabelValues("error")
	r.store(keys)
	return r
}

func (r *KeyRing) store(k *Keys) {
	r.keys.Store(k)
	if k != nil {
		r.inUse.Set(float64(k.Len()))
	} else {
		r.inUse.Set(0)
	}
}

// Keys returns the keys in use (nil when the ring has none).
func (r *KeyRing) Keys() *Keys { return r.keys.Load() }

// Len is the number of keys in use.
func (r *KeyRing) Len() int {
	if k := r.keys.Load(); k != nil {
		return k.Len()
	}
	return 0
}

// Reload reads the file again and, when it parses, makes its keys the ones
// in use. On error the old keys stay and the error says why (LoadKeys'
// errors name the file and the line). It returns the number of keys in use
// afterwards.
func (r *KeyRing) Reload() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file == "" {
		return r.Len(), errors.New("cannot reload API keys: no key file was given")
	}
	k, err := LoadKeys(r.file)
	if err != nil {
		r.reloads.WithLabelValues("error").Inc()
		return r.Len(), err
	}
	r.store(k)
	r.reloads.WithLabelValues("ok").Inc()
	return k.Len(), nil
}

// Collectors are the ring's metrics, to register.
func (r *KeyRing) Collectors() []prometheus.Collector {
	return []prometheus.Collector{r.reloads, r.inUse}
}
