// Package arrowcodec encodes and decodes batches of costpipe events as Arrow
// IPC streams: the value of a Kafka record whose content-type header is
// schemas.ContentTypeArrow ("application/vnd.apache.arrow.stream").
//
// A stream is one schema message, the dictionary batches, one or more record
// batches and the end-of-stream marker. Each row is one event of schema v1;
// the columns are described in schemas/event.arrow.md and returned by Schema.
//
// Producers build streams with an Encoder; the aggregator reads them with a
// Decoder, which validates every row with the same invariants as
// schemas.(*Event).Validate and reports invalid rows one by one, so the valid
// rows of a batch are never lost with a bad one. Neither type is safe for
// concurrent use: keep one per goroutine.
//
// The decoder also reads streams written by other Arrow libraries (pyarrow,
// polars, arrow-rs): string columns may be plain utf8, large_utf8 or
// string_view instead of dictionaries, timestamps may use any unit, optional
// columns may be missing and unknown columns are ignored. Missing optional
// columns also keep streams of older producers readable: those written
// before cache_write_1h_tokens and service_tier were added decode with both
// zero (absent).
package arrowcodec

import (
	"github.com/apache/arrow/go/v15/arrow"
)

// MetadataSchemaVersion is the schema-level metadata key carrying the event
// contract version. Encoders write "1"; decoders accept "1" or no key at all
// and refuse any other value.
const MetadataSchemaVersion = "costpipe.schema_version"

// Column names. They equal the JSON field names of the event contract.
const (
	ColEventID            = "event_id"
	ColTimestamp          = "timestamp"
	ColTenant             = "tenant"
	ColProvider           = "provider"
	ColModel              = "model"
	ColStatus             = "status"
	ColErrorType          = "error_type"
	ColApplication        = "application"
	ColOperation          = "operation"
	ColRegion             = "region"
	ColInputTokens        = "input_tokens"
	ColCachedInputTokens  = "cached_input_tokens"
	ColCacheWriteTokens   = "cache_write_tokens"
	ColOutputTokens       = "output_tokens"
	ColReasoningTokens    = "reasoning_tokens"
	ColCacheWrite1hTokens = "cache_write_1h_tokens"
	ColServiceTier        = "service_tier"
	ColLatencyMs          = "latency_ms"
	ColTTFTMs             = "ttft_ms"
	ColGPUMs              = "gpu_ms"
	ColAttributes         = "attributes"
)

// dictString is the type of the low-cardinality string columns: each
// distinct value is stored once per batch.
var dictString = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// timestampType keeps nanoseconds so decode(encode(e)) reproduces the RFC 3339
// fraction exactly. Its range is 1677-09-21 to 2262-04-11.
var timestampType = &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}

var attributesType = arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)

// schema is shared by every encoder; arrow schemas are immutable.
var schema = arrow.NewSchema([]arrow.Field{
	{Name: ColEventID, Type: arrow.BinaryTypes.String},
	{Name: ColTimestamp, Type: timestampType},
	{Name: ColTenant, Type: dictString},
	{Name: ColProvider, Type: dictString},
	{Name: ColModel, Type: dictString},
	{Name: ColStatus, Type: dictString},
	{Name: ColErrorType, Type: dictString, Nullable: true},
	{Name: ColApplication, Type: dictString, Nullable: true},
	{Name: ColOperation, Type: dictString, Nullable: true},
	{Name: ColRegion, Type: dictString, Nullable: true},
	{Name: ColInputTokens, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColCachedInputTokens, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColCacheWriteTokens, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColOutputTokens, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColReasoningTokens, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColCacheWrite1hTokens, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColServiceTier, Type: dictString, Nullable: true},
	{Name: ColLatencyMs, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColTTFTMs, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColGPUMs, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColAttributes, Type: attributesType, Nullable: true},
}, func() *arrow.Metadata {
	md := arrow.NewMetadata([]string{MetadataSchemaVersion}, []string{"1"})
	return &md
}())

// Schema returns the Arrow schema the Encoder writes (schema v1): one column
// per contract field, named like the JSON field, in contract order, with the
// metadata costpipe.schema_version = "1". The returned schema is shared and
// must not be modified.
func Schema() *arrow.Schema { return schema }
