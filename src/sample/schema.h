// schema.h — JSON Schema → GBNF, for response_format json_schema / json_object and tool arguments.
//
// Supported: type (string, number, integer, boolean, null, object, array, and lists of types),
// properties, required, additionalProperties (false, true or a schema; when absent no extra keys are
// generated, as llama.cpp does), enum, const, items, prefixItems, minItems/maxItems, anyOf, oneOf
// (generated as anyOf: exclusivity is not enforced), allOf (of object schemas: merged), $ref into
// the same document ("#", "#/$defs/…", "#/definitions/…", any JSON pointer), string formats date,
// time, date-time, uuid (the time always carries a zone), minLength/maxLength (code points),
// integer minimum/maximum/exclusiveMinimum/exclusiveMaximum (any 64-bit range), number bounds
// (integral bounds are exact: values with a fraction are generated for non-negative integral parts
// only), nullable (OpenAPI). The output is compact JSON with bounded whitespace; integers have at
// most 16 digits, numbers at most 16 integral digits and a 2-digit exponent.
//
// Rejected with CG_ERR_UNSUPPORTED and the keyword's JSON pointer: pattern, patternProperties,
// format values other than the four above, not, if/then/else, uniqueItems: true, multipleOf,
// minProperties, maxProperties, contains, dependentRequired, dependentSchemas, propertyNames,
// unevaluatedProperties, unevaluatedItems. Ignored (annotations): title, description, default,
// examples, $schema, $id, $comment, readOnly, writeOnly, deprecated, and unknown keywords.
//
// Pure functions, thread-safe.
#ifndef CG_SAMPLE_SCHEMA_H
#define CG_SAMPLE_SCHEMA_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

// Appends a GBNF grammar (start rule `root`) for documents valid under the schema in json[0..n).
// Errors: CG_ERR_FORMAT (not JSON, or a keyword with a value of the wrong type; the message names
// the JSON pointer), CG_ERR_UNSUPPORTED (see above), CG_ERR_NOT_FOUND ($ref target missing),
// CG_ERR_NOMEM.
cg_status cg_schema_to_gbnf(const char *json, size_t n, cg_buf *out, cg_err *err);

// Appends the grammar of any JSON object (response_format {"type": "json_object"}).
void cg_schema_any_object_gbnf(cg_buf *out);

// For tool-call grammars: appends rules for the schema with every rule name prefixed by `prefix`
// (letters, digits, '-') and the schema's top rule named `<prefix>root`.
cg_status cg_schema_to_gbnf_rules(const char *json, size_t n, const char *prefix, cg_buf *out, cg_err *err);

#endif
