/* dtype names, sizes and PyTorch's promotion order bool < int64 < float32 < float64. */
#include "internal.h"

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
