// Package producers is how events get into costpipe's Kafka topic: the Go
// producer SDK (Producer) for services and gateways that make inference calls,
// and the line-oriented sender behind `costpipe produce` (SendLines). Every
// record follows the event contract: topic costpipe.events by default, header
// content-type, value one JSON event or an Arrow IPC stream of many events.
//
// # The producer SDK
//
// New starts a Producer; Emit validates an event, copies it into a bounded
// buffer and returns, costing the caller well under a microsecond (see
// BenchmarkEmit); background goroutines encode and produce the buffered
// events with franz-go's idempotent producer (acks=all); Flush waits for what
// was emitted before it; Close flushes and stops (within
// Options.CloseTimeout, 30s by default, when its ctx has no deadline). Every
// event ends up in exactly one of the Stats counters Sent, Failed or Dropped
// (Buffered counts those still on their way). Every failed or dropped event
// is reported to Options.OnError when it is set; either way Emit returns
// ErrBufferFull for a drop, and Flush and Close return a *LossError when
// events failed during the call. Without OnError, losses are logged to
// Options.Logger (slog.Default()) at most once a minute, with the events
// lost since the line before, so that nothing is lost silently.
//
// # Design
//
// Emit → buffer → flusher → workers → kgo. Emit appends a copy of the event
// to a chunked in-memory buffer under a mutex: no encoding, no per-event
// allocation (except a copy of a non-empty Attributes map). The buffer is bounded by
// Options.BufferEvents, counting every event from Emit until Kafka
// acknowledges or fails it, so it bounds the events waiting in the SDK and
// in franz-go together (franz-go's MaxBufferedRecords is set above that
// bound and never blocks). When it is full Emit drops the event, counts it
// and returns ErrBufferFull (Drop, the default: a Kafka outage never slows
// the request path), or waits until there is room or its ctx ends (Block,
// for batch jobs that want back pressure).
//
// A single flusher goroutine takes the buffered events when Linger has passed
// since the first of them or BatchEvents (per partition, in Arrow mode) have
// accumulated, routes each event by its record key and hands batches to
// Options.Workers worker goroutines, which encode and produce them. A key
// always goes to the same worker, and batches reach a worker in order, so
// the events of one key are produced in Emit order (for one emitting
// goroutine; across goroutines Emit order is whatever the mutex decides).
//
// JSON mode: one record per event, key tenant+"\x00"+model, partitioned by
// franz-go's key partitioner (Kafka-compatible murmur2).
//
// Arrow mode: one record carries up to BatchEvents events, all of which
// belong to one partition. The flusher learns the topic's partition count
// from a Kafka metadata request (refreshed every minute), computes each
// event's partition with the same murmur2 key partitioner franz-go uses for
// JSON records (kgo.StickyKeyPartitioner(nil)), groups the events by
// partition and sends each group to that partition explicitly (a manual
// partitioner). So one key's events land on the same partition as its JSON
// records would, in order, as the contract requires. An Arrow record has
// many keys, so its record key is nil; consumers take the keys from the
// events. Until the partition count is known (the broker is unreachable
// when the Producer starts) events stay buffered, and with a
// DeliveryTimeout they fail once they waited longer than it. If the topic
// gains partitions, events keep the old mapping until the next refresh
// that franz-go's producer has seen the new partitions too (it is asked to
// look at once; a record sent to a partition it does not know yet would
// fail), just as with Kafka's own key partitioner.
package producers
