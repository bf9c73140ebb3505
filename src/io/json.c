/* Helpers for JSON text (cJSON does the parsing and printing): UTF-8 checks, numbers that
 * read back exactly, and positions for error messages. */
#include "io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t mm_utf8_invalid_at(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c >= 0x01 && c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0)
        lo = 0xA0; /* overlong */
      else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0)
        lo = 0x90; /* overlong */
      else if (c == 0xF4)
        hi = 0x8F; /* past U+10FFFF */
    } else {
      return (int64_t)i; /* NUL, a continuation byte, C0, C1, F5..FF */
    }
    if (i + len > n)
      return (int64_t)i;
    if (p[i + 1] < lo || p[i + 1] > hi)
      return (int64_t)i;
    for (size_t k = 2; k < len; k++)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF)
        return (int64_t)i;
    i += len;
  }
  return -1;
}

void mm_json_format_double(char *buf, size_t n, double v) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, v);
    if (prec == 17 || strtod(buf, NULL) == v)
      break;
  }
  /* "3" would read back as an integer: keep the float a float */
  if (strspn(buf, "-0123456789") == strlen(buf)) {
    size_t len = strlen(buf);
    if (len + 3 <= n)
      memcpy(buf + len, ".0", 3);
  }
}

void mm_text_position(const char *text, size_t pos, int64_t *line, int64_t *col) {
  int64_t l = 1, c = 1;
  for (size_t i = 0; i < pos && text[i]; i++) {
    if (text[i] == '\n') {
      l++;
      c = 1;
    } else {
      c++;
    }
  }
  *line = l;
  *col = c;
}

int mm_json_depth_at(const char *text, size_t pos, bool *in_string_out) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < pos && text[i]; i++) {
    char ch = text[i];
    if (in_string) {
      if (ch == '\\' && i + 1 < pos)
        i++;
      else if (ch == '"')
        in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      depth++;
    } else if (ch == ']' || ch == '}') {
      depth--;
    }
  }
  if (in_string_out)
    *in_string_out = in_string;
  return depth;
}
