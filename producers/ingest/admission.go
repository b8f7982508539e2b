package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// This file is admission: the request slots (Options.MaxInFlight, and
// MaxReceivingPerKey of them for one API key while the body arrives) and
// the share of the in-flight byte budget a request reserves beyond its
// body, for what the body decodes to.

// keySlots counts the requests of each API key receiving their body.
type keySlots struct {
	max int // per key; 0: no limit
	mu  sync.Mutex
	n   map[keyHash]int // keys with requests receiving only
}

// acquire takes one of key's slots, or reports false. The zero key (no
// authentication) has no limit of its own.
func (k *keySlots) acquire(key keyHash) bool {
	if k.max <= 0 || key == (keyHash{}) {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n[key] >= k.max {
		return false
	}
	if k.n == nil {
		k.n = make(map[keyHash]int)
	}
	k.n[key]++
	return true
}

func (k *keySlots) release(key keyHash) {
	if k.max <= 0 || key == (keyHash{}) {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n[key]--; k.n[key] <= 0 {
		delete(k.n, key)
	}
}

// admit takes one of the MaxInFlight request slots and one of the key's
// MaxReceivingPerKey, or returns the reason it cannot (reasonMaxInFlight,
// reasonMaxReceivingKey). After admit returned "", call received once the
// body is read (or failed), and leave when the request ends.
func (s *Server) admit(key keyHash) string {
	if s.inflight.Add(1) > int64(s.opts.MaxInFlight) {
		s.inflight.Add(-1)
		return reasonMaxInFlight
	}
	if !s.perKey.acquire(key) {
		s.inflight.Add(-1)
		return reasonMaxReceivingKey
	}
	return ""
}

// held is what an admitted request holds: its request slot and its key's
// receiving slot (admit), and the bytes it reserved from the budget. The
// handler defers release, which gives back what is still held.
type held struct {
	s                   *Server
	key                 keyHash
	inFlight, receiving bool
	reserved            int64
}

// hold is what a request admit let in holds.
func (s *Server) hold(key keyHash) *held {
	return &held{s: s, key: key, inFlight: true, receiving: true}
}

// readBody reads the request's body (readBody). Once it is read the key's
// receiving slot goes back. A body that could not be read gives back its
// bytes and its request slot at once and keeps only the key's slot, until
// release, after the handler discarded the rest of it (refuse): one key's
// bad bodies cannot take the slots and the budget of every other key while
// they are discarded.
func (h *held) readBody(w http.ResponseWriter, r *http.Request, gzipped bool) (body []byte, started bool, err error) {
	body, err = readBody(w, r, gzipped, h.s.opts.MaxBodyBytes, &h.s.budget, &h.reserved, &started)
	if err != nil {
		h.s.budget.release(h.reserved)
		h.reserved = 0
		h.s.leave()
		h.inFlight = false
		return nil, started, err
	}
	h.s.received(h.key)
	h.receiving = false
	return body, started, nil
}

// release gives back what the request still holds.
func (h *held) release() {
	h.s.budget.release(h.reserved)
	h.reserved = 0
	if h.inFlight {
		h.s.leave()
		h.inFlight = false
	}
	if h.receiving {
		h.s.received(h.key)
		h.receiving = false
	}
}

// received gives back the key's slot admit took.
func (s *Server) received(key keyHash) { s.perKey.release(key) }

// leave gives back the request slot admit took.
func (s *Server) leave() { s.inflight.Add(-1) }

// admitError is the answer's error of a 429 for reason.
func (s *Server) admitError(reason string) string {
	switch reason {
	case reasonMaxInFlight:
		return fmt.Sprintf("cannot take the request now: %d requests in flight, retry later", s.opts.MaxInFlight)
	case reasonMaxReceivingKey:
		return fmt.Sprintf("cannot take the request now: the API key has %d requests still sending their body, its limit (--max-receiving-per-key), retry later",
			s.opts.MaxReceivingPerKey)
	}
	return fmt.Sprintf("cannot take the request now: %d bytes of requests in flight, retry later", s.opts.MaxInFlightBytes)
}

// reserveDecoded reserves cost more bytes from the budget for a request
// that holds *reserved already (its body), for what the body decodes to.
// A cost that can never fit, MaxInFlightBytes less *reserved, is answered
// 413, naming what (e.g. "80000 spans would take about 19 MB once
// decoded"); one that does not fit now, 429. answer writes the answer. It
// returns 0 once reserved, else the status answered.
func (s *Server) reserveDecoded(r *http.Request, tenant string, cost int64, what string, reserved *int64, answer func(code int, msg string) int) int {
	if cost <= 0 {
		return 0
	}
	if cost > s.budget.max-*reserved {
		msg := fmt.Sprintf("cannot accept the request: its %s, more than one request may hold (--max-inflight-bytes %d, less the body's %d); send smaller batches",
			what, s.opts.MaxInFlightBytes, *reserved)
		s.refused(r, reasonTooLarge, http.StatusRequestEntityTooLarge, tenant, "", msg)
		return answer(http.StatusRequestEntityTooLarge, msg)
	}
	if !s.budget.tryAcquire(cost) {
		msg := s.admitError(reasonMaxInFlightBytes)
		s.refused(r, reasonMaxInFlightBytes, http.StatusTooManyRequests, tenant, "", msg)
		return answer(http.StatusTooManyRequests, msg)
	}
	*reserved += cost
	return 0
}

// recordSize is the size of a kgo.Record, one per event produced.
var recordSize = int64(reflect.TypeFor[kgo.Record]().Size())

// spanSize is the size of a span, one per event of a batch.
var spanSize = int64(reflect.TypeFor[span]().Size())

// eventsCost estimates the bytes a /v1/events body of that many bytes
// becomes beyond itself: the batch's arena of records (about the body's
// size: canonical JSON, key and tenant), and per event a span and a
// kgo.Record. Every event is an object, so its '{' count bounds the events
// (nested objects make it an overestimate).
func eventsCost(body []byte) int64 {
	n := int64(bytes.Count(body, []byte{'{'}))
	return int64(len(body)) + int64(len(body))/4 + n*(spanSize+recordSize)
}

// held is the bytes b's records take: the arena in use, and per record a
// span and the kgo.Record produce makes of it. (What a pooled batch holds
// beyond that is held by the pool as much as by the request.)
func (b *batch) held() int64 {
	return int64(len(b.arena)) + int64(len(b.spans))*(spanSize+recordSize)
}

// trueUp adds to *reserved, beyond the budget if need be, what b holds
// beyond the forBatch bytes reserved for it by estimate, so the budget
// counts what the request holds while its records are produced: later
// requests are refused until it ends.
func (s *Server) trueUp(b *batch, forBatch int64, reserved *int64) {
	if extra := b.held() - forBatch; extra > 0 {
		s.budget.used.Add(extra)
		*reserved += extra
	}
}
