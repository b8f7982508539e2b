// Package flock takes advisory file locks (flock(2)) where the system has
// them: the DLQ spool's writer and `costpipe dlq unspool` take turns on a
// spool file, and one `costpipe broker` owns a data directory. Elsewhere
// the functions do nothing.
package flock
