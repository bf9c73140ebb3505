/* Shared by the file formats in src/io and the JSON binding: UTF-8 checks, number text and
 * positions in a text. Internal; not part of the public API. */
#ifndef MM_IO_H
#define MM_IO_H

#include "../moonml.h"

#include <cjson/cJSON.h>

/* cJSON_ParseWithLengthOpts and the parse-end pointer on errors need 1.7.13 */
#if CJSON_VERSION_MAJOR < 1 ||                                                                     \
    (CJSON_VERSION_MAJOR == 1 &&                                                                   \
     (CJSON_VERSION_MINOR < 7 || (CJSON_VERSION_MINOR == 7 && CJSON_VERSION_PATCH < 13)))
#error "moonml needs cJSON 1.7.13 or later"
#endif

/* The largest integer a double holds exactly (2^53): JSON numbers up to it are read as
 * integers without loss. */
#define MM_JSON_MAX_EXACT 9007199254740992.0

/* Byte offset of the first byte of s[0..n) that breaks UTF-8 (overlong forms, surrogates,
 * code points past U+10FFFF, truncated sequences, and NUL bytes), or -1 when s is valid. */
int64_t mm_utf8_invalid_at(const char *s, size_t n);

/* v (finite) as the shortest "%.{15,16,17}g" text that reads back exactly, with ".0"
 * appended when the text would read as an integer; buf holds at least 32 bytes. */
void mm_json_format_double(char *buf, size_t n, double v);

/* 1-based line and column (in bytes) of byte offset pos of text. */
void mm_text_position(const char *text, size_t pos, int64_t *line, int64_t *col);

/* Depth of nesting of [ and { (outside strings) at byte offset pos of a JSON text; *in_string
 * (may be NULL) tells whether pos is inside a string. */
int mm_json_depth_at(const char *text, size_t pos, bool *in_string);

#endif
