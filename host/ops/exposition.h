// The stats registry's families as text for GET /metrics: the Prometheus text
// format 0.0.4, or OpenMetrics 1.0.0 when the scraper asks for it (Prometheus
// itself does, first, in its Accept header).
#pragma once

#include "ops/stats.h"

#include <string>
#include <string_view>
#include <vector>

namespace evh::ops {

enum class Format {
  Prometheus,  // text/plain; version=0.0.4
  OpenMetrics  // application/openmetrics-text; version=1.0.0
};

// The format an Accept header asks for: OpenMetrics when it accepts
// application/openmetrics-text (version 1.0.0, 0.0.1 or none given) with a
// q-value above 0 and no lower than text/plain's (or */*'s); at equal q the
// one listed first. Anything else -- no header, text/plain, a type evhost does
// not serve -- gets the text format 0.0.4, which every scraper reads.
Format negotiate(std::string_view accept);

// The Content-Type of a body in `format`.
const char* contentType(Format format) noexcept;

// Renders `families` in `format`. Each family name must appear once (an
// exposition must not repeat a family); families come out in the order given.
//   - Counters and gauges written through a handle print their exact integer;
//     computed gauges and histogram sums print the shortest text that reads
//     back as the same double (Go's %g, as the Prometheus client libraries
//     do): 0.25, 1e-05, 1.5e+06; +Inf, -Inf and NaN as Prometheus spells them.
//   - Histograms: name_bucket{...,le="..."} (cumulative, the last le="+Inf"),
//     name_sum, name_count.
//   - HELP text and label values are escaped (backslash, newline; a double
//     quote too in label values, and in OpenMetrics' HELP); a string that is
//     not valid UTF-8 has its non-ASCII bytes replaced by '?' rather than
//     making the whole exposition unreadable.
//   - OpenMetrics: a counter's family is named without _total (its sample
//     keeps it), an Info family without _info; le values are canonical
//     ("1.0", "0.005", "1e+06"); the body ends with "# EOF".
//   - The text format 0.0.4 prints an Info family as a gauge.
std::string render(const std::vector<FamilySample>& families, Format format);
// The same over collected families: each a family's shape and its values
// (indexed by its series' slots).
struct FamilyRef {
  const FamilyShape* family;
  const Value* values;  // the family's first value in its collection
};
std::string render(const std::vector<FamilyRef>& families, Format format);

// Fills `family`'s pre-rendered parts (FamilyShape::meta, sample_name,
// les) for both formats, so that a scrape writes them as they are.
void renderShape(FamilyShape& family);

// The labels as the text formats write them inside braces: name="value"
// pairs, comma-separated, values escaped as render() does.
std::string labelText(const Labels& labels);

// Go's strconv.FormatFloat(v, 'g', -1, 64), with "+Inf", "-Inf", "NaN".
std::string formatDouble(double v);

}  // namespace evh::ops
