/* Lua binding for images: PNG load/save (src/io/png.c), the drawing primitives ml.plot uses
 * (src/io/draw.c), and listing a folder (the PNG-folder dataset). Everything sits in
 * core._image; lua/moonml/image.lua and plot.lua give the public face. */
#define _POSIX_C_SOURCE 200809L /* opendir, stat */
#include "binding.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *check_path(lua_State *L, int idx, const char *fn) {
  if (lua_type(L, idx) != LUA_TSTRING)
    mml_error(L, "moonml.%s: expected a file name as argument %d, got %s", fn, idx,
              mml_typename(L, idx));
  size_t len;
  const char *path = lua_tolstring(L, idx, &len);
  if (len == 0 || strlen(path) != len)
    mml_error(L, "moonml.%s: the file name is empty or holds a zero byte", fn);
  return path;
}

/* load(path) -> C x H x W float32 tensor */
static int l_load(lua_State *L) {
  const char *path = check_path(L, 1, "image.load");
  mml_push_tensor(L, mm_png_load(mml_ctx(L), path));
  return 1;
}

/* save(t, path[, {bit_depth = 8 | 16}]) */
static int l_save(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "image.save");
  const char *path = check_path(L, 2, "image.save");
  int bits = 8;
  if (!lua_isnoneornil(L, 3)) {
    if (!lua_istable(L, 3))
      mml_error(L, "moonml.image.save: options must be a table, got %s", mml_typename(L, 3));
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "bit_depth") != 0)
        mml_error(L, "moonml.image.save: unknown option '%s'", luaL_tolstring(L, -1, NULL));
    }
    lua_getfield(L, 3, "bit_depth");
    if (!lua_isnil(L, -1))
      bits = (int)mml_check_integer(L, -1, "image.save", "bit_depth");
    lua_pop(L, 1);
  }
  mml_check_status(L, mm_png_save(mml_ctx(L), t, path, bits));
  return 0;
}

/* ---------------------------------------------------------------- drawing */

/* The colour table at idx: one number per canvas channel. */
static void check_color(lua_State *L, int idx, const char *fn, const mm_tensor *canvas,
                        float *color) {
  if (!lua_istable(L, idx))
    mml_error(L, "moonml.%s: color must be a table of numbers, got %s", fn, mml_typename(L, idx));
  int nc = canvas->ndim == 3 && canvas->shape[0] >= 1 && canvas->shape[0] <= 4
               ? (int)canvas->shape[0]
               : 1;
  for (int c = 0; c < nc; c++) {
    lua_rawgeti(L, idx, c + 1);
    color[c] = (float)mml_check_number(L, -1, fn, "a color component");
    lua_pop(L, 1);
  }
}

/* A flat Lua array {x1, y1, x2, y2, ...} into a new C array (freed by the caller). */
static double *check_points(lua_State *L, int idx, const char *fn, int64_t *n) {
  if (!lua_istable(L, idx))
    mml_error(L, "moonml.%s: expected a flat table of coordinates, got %s", fn,
              mml_typename(L, idx));
  lua_Integer len = luaL_len(L, idx);
  if (len % 2 != 0)
    mml_error(L, "moonml.%s: an odd number of coordinates (%I)", fn, len);
  /* a userdata buffer: a Lua error while reading the table cannot leak it */
  double *xy = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof *xy, 0);
  for (lua_Integer i = 0; i < len; i++) {
    lua_rawgeti(L, idx, i + 1);
    xy[i] = mml_check_number(L, -1, fn, "a coordinate");
    lua_pop(L, 1);
  }
  *n = len / 2;
  return xy;
}

/* rect(canvas, x0, y0, x1, y1, color): 0-based pixels, x1/y1 exclusive */
static int l_rect(lua_State *L) {
  mm_tensor *canvas = mml_check_tensor(L, 1, "image.rect");
  int64_t v[4];
  for (int k = 0; k < 4; k++)
    v[k] = mml_check_integer(L, 2 + k, "image.rect", "a pixel coordinate");
  float color[4];
  check_color(L, 6, "image.rect", canvas, color);
  mml_check_status(L, mm_draw_rect(mml_ctx(L), canvas, v[0], v[1], v[2], v[3], color));
  return 0;
}

/* polyline(canvas, {x1, y1, ...}, width, color) */
static int l_polyline(lua_State *L) {
  mm_tensor *canvas = mml_check_tensor(L, 1, "image.polyline");
  int64_t n;
  const double *xy = check_points(L, 2, "image.polyline", &n);
  double width = mml_check_number(L, 3, "image.polyline", "width");
  float color[4];
  check_color(L, 4, "image.polyline", canvas, color);
  mml_check_status(L, mm_draw_polyline(mml_ctx(L), canvas, xy, n, width, color));
  return 0;
}

/* markers(canvas, {x1, y1, ...}, radius, color) */
static int l_markers(lua_State *L) {
  mm_tensor *canvas = mml_check_tensor(L, 1, "image.markers");
  int64_t n;
  const double *xy = check_points(L, 2, "image.markers", &n);
  double radius = mml_check_number(L, 3, "image.markers", "radius");
  float color[4];
  check_color(L, 4, "image.markers", canvas, color);
  mml_check_status(L, mm_draw_markers(mml_ctx(L), canvas, xy, n, radius, color));
  return 0;
}

/* text(canvas, str, x, y, scale, vertical, color) */
static int l_text(lua_State *L) {
  mm_tensor *canvas = mml_check_tensor(L, 1, "image.text");
  const char *s = luaL_checkstring(L, 2);
  int64_t x = mml_check_integer(L, 3, "image.text", "x");
  int64_t y = mml_check_integer(L, 4, "image.text", "y");
  int64_t scale = mml_check_integer(L, 5, "image.text", "scale");
  bool vertical = lua_toboolean(L, 6);
  float color[4];
  check_color(L, 7, "image.text", canvas, color);
  if (scale < 1 || scale > 64)
    mml_error(L, "moonml.image.text: scale must be 1 to 64, got %I", (lua_Integer)scale);
  mml_check_status(L, mm_draw_text(mml_ctx(L), canvas, s, x, y, (int)scale, vertical, color));
  return 0;
}

/* ---------------------------------------------------------------- folders */

/* list_dir(path) -> names, is_dir: two arrays, entries "." and ".." left out, unsorted */
static int l_list_dir(lua_State *L) {
  const char *path = check_path(L, 1, "image.list_dir");
  DIR *d = opendir(path);
  if (!d)
    return mml_error(L, "moonml.image.list_dir: cannot open the folder %s: %s", path,
                     strerror(errno));
  lua_newtable(L);
  lua_newtable(L);
  int n = 0;
  struct dirent *e;
  /* no Lua error can happen while the folder is open but a memory error; collect first */
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -3, ++n);
  }
  closedir(d);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    lua_pushfstring(L, "%s/%s", path, lua_tostring(L, -1));
    struct stat st;
    bool is_dir = stat(lua_tostring(L, -1), &st) == 0 && S_ISDIR(st.st_mode);
    lua_pop(L, 2);
    lua_pushboolean(L, is_dir);
    lua_rawseti(L, -2, i);
  }
  return 2;
}

static const luaL_Reg functions[] = {
    {"load", l_load},       {"save", l_save}, {"rect", l_rect},         {"polyline", l_polyline},
    {"markers", l_markers}, {"text", l_text}, {"list_dir", l_list_dir}, {NULL, NULL},
};

void mml_open_image(lua_State *L, const mml_open_state *st) {
  lua_newtable(L);
  int t = lua_gettop(L);
  mml_register(L, st, t, functions);
  lua_newtable(L);
  lua_pushinteger(L, MM_FONT_WIDTH);
  lua_setfield(L, -2, "width");
  lua_pushinteger(L, MM_FONT_HEIGHT);
  lua_setfield(L, -2, "height");
  lua_pushinteger(L, MM_FONT_ADVANCE);
  lua_setfield(L, -2, "advance");
  lua_setfield(L, t, "font");
  lua_setfield(L, st->module, "_image");
}
