/* dtype names, sizes and PyTorch's promotion order bool < int64 < float32 < float64. */
#include "internal.h"

#include <math.h>
#include <string.h>

static const struct {
  const char *name;
  size_t size;
  int rank; /* promotion order */
} dtype_info[] = {
    [MM_FLOAT32] = {"float32", 4, 2},
    [MM_INT64] = {"int64", 8, 1},
    [MM_BOOL] = {"bool", 1, 0},
    [MM_FLOAT64] = {"float64", 8, 3},
};
_Static_assert(sizeof dtype_info / sizeof dtype_info[0] == MM_DTYPE_COUNT,
               "dtype table out of step with mm_dtype");

const char *mm_dtype_name(mm_dtype dt) {
  return (unsigned)dt < MM_DTYPE_COUNT ? dtype_info[dt].name : "?";
}

size_t mm_dtype_size(mm_dtype dt) { return dtype_info[dt].size; }

bool mm_dtype_is_float(mm_dtype dt) { return dt == MM_FLOAT32 || dt == MM_FLOAT64; }

int mm_dtype_from_name(const char *name, mm_dtype *out) {
  static const struct {
    const char *alias;
    mm_dtype dt;
  } aliases[] = {{"float", MM_FLOAT32}, {"long", MM_INT64}, {"double", MM_FLOAT64}};
  for (int i = 0; i < MM_DTYPE_COUNT; i++)
    if (strcmp(name, dtype_info[i].name) == 0) {
      *out = (mm_dtype)i;
      return 0;
    }
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcmp(name, aliases[i].alias) == 0) {
      *out = aliases[i].dt;
      return 0;
    }
  return -1;
}

mm_dtype mm_promote(mm_dtype a, mm_dtype b) {
  return dtype_info[a].rank >= dtype_info[b].rank ? a : b;
}

/* ------------------------------------------------------------------ rules shared by the ops */

int mm_dtype_category(mm_dtype dt) { return dt == MM_BOOL ? 0 : dt == MM_INT64 ? 1 : 2; }

bool mm_scalar_is_int(mm_scalar s) {
  return s.is_integer && isfinite(s.value) && floor(s.value) == s.value;
}

mm_dtype mm_scalar_promote(mm_dtype t, mm_scalar s) {
  int cs = mm_scalar_is_int(s) ? 1 : 2;
  if (cs <= mm_dtype_category(t))
    return t;
  return cs == 1 ? MM_INT64 : MM_FLOAT32;
}

bool mm_can_cast(mm_dtype from, mm_dtype to) {
  if (mm_dtype_is_float(from) && !mm_dtype_is_float(to))
    return false;
  if (from != MM_BOOL && to == MM_BOOL)
    return false;
  return true;
}

const char *mm_dtype_article(mm_dtype dt) { return dt == MM_INT64 ? "an" : "a"; }

int64_t mm_to_int64(double v) {
  if (isnan(v))
    return 0;
  if (v >= 9223372036854775807.0)
    return INT64_MAX;
  if (v <= -9223372036854775808.0)
    return INT64_MIN;
  return (int64_t)v;
}
