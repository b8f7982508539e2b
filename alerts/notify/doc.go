// Package notify delivers alert notifications to receivers: signed
// Standard Webhooks, Slack incoming webhooks, a Kafka topic and the log.
// The alerts package decides what to send; this package sends it.
//
// # Delivery
//
// A Dispatcher has one bounded queue and one worker goroutine per Receiver,
// so a slow or dead receiver delays only itself. Enqueue never blocks: when
// a receiver's queue is full the notification is dropped and counted. A
// worker tries each notification until it is delivered, a receiver reports
// ErrPermanent, or MaxAttempts (8) attempts failed, waiting between attempts
// with exponential backoff and full jitter (1 s doubling up to 5 min) and at
// least a Retry-After the receiver was given. A notification's RetryUntil
// turns attempts used up before it into a deferral (ErrDeferred: its sender
// offers it again later) and its Deadline stops attempts that could end
// after it (ErrExpired). Each outcome is reported once as a Result; the
// alerts package records a deferred one to claim it again at a later
// evaluation and any other failure as a dead letter. Close drains the queues
// until its context is done.
//
// # Receivers
//
// One file per receiver type, each built from a ReceiverConfig (Build):
//
//   - webhook (webhook.go): POST of Notification.Body signed with
//     Standard Webhooks (sign.go): webhook-id is Notification.ID,
//     webhook-timestamp the unix seconds of the attempt, webhook-signature
//     "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", one per secret
//     (two during a rotation, space separated). Secrets are written
//     whsec_<base64> and the key is the decoded part.
//   - slack (slack.go): POST of {"text": SlackText(n)} to an incoming
//     webhook URL, a secret that never appears in errors.
//   - kafka (kafka.go): one record on costpipe.alerts (or the configured
//     topic), key Notification.ID, value Notification.Body, headers type,
//     rule and content-type.
//   - log (log.go): one structured slog line.
//
// HTTP answers are classified in one place (classifyResponse): 2xx is
// delivered; 408, 429 and 5xx and network errors are retried; every other
// answer (3xx included: redirects are not followed) is permanent.
//
// # Duplicates
//
// The alerts package records each notification before and after delivery,
// so only a crash between a receiver's answer and its record can repeat a
// delivery, and then with the same Notification.ID (webhook-id, Kafka
// key): receivers drop duplicates by that ID. docs/alerts-receivers.md shows
// how a receiver verifies signatures, in Go and Python.
//
// # Concurrency
//
// Receivers are safe for concurrent use; the Dispatcher calls each one from
// a single goroutine. A Dispatcher owns its goroutines: they stop when Close
// returns. Receivers do not own the *http.Client or *kgo.Client of Deps.
package notify
