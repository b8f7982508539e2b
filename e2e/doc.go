// Package e2e holds end-to-end tests of the built costpipe binary: the
// aggregator runs as separate processes against the embedded Kafka-protocol
// broker and a private ClickHouse server, is killed, restarted and cut off
// from ClickHouse, and the rollups it lands are compared exactly with a truth
// computed independently by the tests. It has no non-test code.
package e2e
