/* Lua binding of JSON through cJSON: Lua values <-> cJSON trees. Registered as the table
 * `_json` of moonml.core; lua/moonml/json.lua holds the API (ml.json) and passes in the
 * null sentinel. Every error names the place in the value or the text. */
#include "../io/io.h"
#include "binding.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH CJSON_NESTING_LIMIT /* cJSON's own limit when parsing (1000) */
#define PATH_MAX_LEN 256

/* A cJSON tree owned by a userdata, so an error raised halfway frees it. */
typedef struct {
  cJSON *root;
} tree_box;

static int tree_gc(lua_State *L) {
  tree_box *b = lua_touserdata(L, 1);
  cJSON_Delete(b->root);
  b->root = NULL;
  return 0;
}

static tree_box *new_tree_box(lua_State *L) {
  tree_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->root = NULL;
  lua_newtable(L);
  lua_pushcfunction(L, tree_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  return b;
}

/* ------------------------------------------------------------------ encode */

typedef struct {
  lua_State *L;
  int null_idx;     /* the ml.json.null sentinel */
  int visiting_idx; /* tables on the current path (cycles) */
  char path[PATH_MAX_LEN];
  size_t path_len;
} encoder;

/* Appends ".key" or "[i]" to the path of the value being written (cut at PATH_MAX_LEN). */
static size_t path_push(encoder *E, const char *key, long long index) {
  size_t saved = E->path_len, room = PATH_MAX_LEN - E->path_len;
  int w = key ? snprintf(E->path + E->path_len, room, ".%s", key)
              : snprintf(E->path + E->path_len, room, "[%lld]", index);
  if (w > 0)
    E->path_len += (size_t)w < room ? (size_t)w : room - 1;
  return saved;
}

static void path_pop(encoder *E, size_t saved) {
  E->path_len = saved;
  E->path[saved] = '\0';
}

static int enc_error(encoder *E, const char *what) {
  return mml_error(E->L, "moonml.json.encode: %s at %s", what, E->path);
}

static cJSON *enc_raw(encoder *E, const char *text) {
  cJSON *x = cJSON_CreateRaw(text);
  if (!x)
    mml_error(E->L, "moonml.json.encode: out of memory");
  return x;
}

static void check_utf8(encoder *E, const char *s, size_t len, const char *what) {
  int64_t bad = mm_utf8_invalid_at(s, len);
  if (bad >= 0)
    mml_error(E->L, "moonml.json.encode: %s at %s is not valid UTF-8 text (byte %d)", what, E->path,
              (int)bad + 1);
}

static void attach(encoder *E, cJSON *parent, const char *key, cJSON *item) {
  bool ok = key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item);
  if (!ok) {
    cJSON_Delete(item);
    mml_error(E->L, "moonml.json.encode: out of memory");
  }
}

static void enc_value(encoder *E, int idx, cJSON *parent, const char *key, int depth);

static int cmp_keys(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Is the table at idx marked as an array (metatable field __jsontype = "array")? */
static bool marked_array(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx))
    return false;
  lua_getfield(L, -1, "__jsontype");
  bool yes = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "array") == 0;
  lua_pop(L, 2);
  return yes;
}

static void enc_table(encoder *E, int idx, cJSON *parent, const char *key, int depth) {
  lua_State *L = E->L;
  if (depth > JSON_MAX_DEPTH)
    mml_error(L, "moonml.json.encode: nesting deeper than %d levels at %s", JSON_MAX_DEPTH,
              E->path);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, E->visiting_idx) != LUA_TNIL)
    enc_error(E, "a cycle: the table refers back to itself");
  lua_pop(L, 1);
  /* classify the keys: 1..n make an array, strings an object, nothing else */
  lua_Integer n_int = 0, max_int = 0, n_str = 0, n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
      n_int++;
      if (lua_tointeger(L, -2) > max_int)
        max_int = lua_tointeger(L, -2);
    } else if (lua_type(L, -2) == LUA_TSTRING) {
      n_str++;
    } else {
      const char *type = luaL_typename(L, -2);
      lua_pushvalue(L, -2);
      const char *text = luaL_tolstring(L, -1, NULL);
      mml_error(L,
                "moonml.json.encode: a key of type %s (%s) at %s; keys must be strings, or "
                "1..n for an array",
                type, text, E->path);
    }
    lua_pop(L, 1);
  }
  bool as_array = (n_int > 0 && n_str == 0) || (n == 0 && marked_array(L, idx));
  if (n_int > 0 && n_str > 0) {
    /* name a string key: the message should say which entry does not belong */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TSTRING)
        break;
    }
    mml_error(L, "moonml.json.encode: the table at %s mixes array items (1..%d) with the key '%s'",
              E->path, (int)max_int, lua_tostring(L, -1));
  }
  if (as_array && max_int != n_int)
    mml_error(L, "moonml.json.encode: the array at %s has a hole: %d items but an item %d", E->path,
              (int)n_int, (int)max_int);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, E->visiting_idx);
  cJSON *node = as_array ? cJSON_CreateArray() : cJSON_CreateObject();
  if (!node)
    mml_error(L, "moonml.json.encode: out of memory");
  attach(E, parent, key, node);
  luaL_checkstack(L, 4, "moonml.json.encode: nesting too deep");
  if (as_array) {
    for (lua_Integer i = 1; i <= n_int; i++) {
      size_t saved = path_push(E, NULL, (long long)i);
      lua_rawgeti(L, idx, i);
      enc_value(E, lua_gettop(L), node, NULL, depth + 1);
      lua_pop(L, 1);
      path_pop(E, saved);
    }
  } else if (n_str > 0) {
    const char **keys = lua_newuserdatauv(L, sizeof *keys * (size_t)n_str, 0);
    int k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* the keys stay alive in the table */
      keys[k++] = lua_tostring(L, -2);
      lua_pop(L, 1);
    }
    qsort(keys, (size_t)n_str, sizeof *keys, cmp_keys);
    for (int i = 0; i < k; i++) {
      size_t saved = path_push(E, keys[i], 0);
      lua_pushstring(L, keys[i]);
      size_t klen;
      const char *ks = lua_tolstring(L, -1, &klen);
      check_utf8(E, ks, klen, "a key");
      lua_rawget(L, idx);
      enc_value(E, lua_gettop(L), node, keys[i], depth + 1);
      lua_pop(L, 1);
      path_pop(E, saved);
    }
    lua_pop(L, 1); /* keys */
  }
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, E->visiting_idx);
}

static void enc_value(encoder *E, int idx, cJSON *parent, const char *key, int depth) {
  lua_State *L = E->L;
  cJSON *item = NULL;
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: {
    char buf[40];
    if (lua_isinteger(L, idx)) {
      snprintf(buf, sizeof buf, LUA_INTEGER_FMT, lua_tointeger(L, idx));
    } else {
      double v = (double)lua_tonumber(L, idx);
      if (!isfinite(v))
        enc_error(E, v != v ? "NaN cannot be written in JSON"
                            : "an infinite number cannot be "
                              "written in JSON");
      mm_json_format_double(buf, sizeof buf, v);
    }
    item = enc_raw(E, buf);
    break;
  }
  case LUA_TBOOLEAN:
    item = cJSON_CreateBool(lua_toboolean(L, idx));
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    check_utf8(E, s, len, "a string");
    item = cJSON_CreateString(s);
    break;
  }
  case LUA_TTABLE:
    if (lua_rawequal(L, idx, E->null_idx)) {
      item = cJSON_CreateNull();
      break;
    }
    enc_table(E, idx, parent, key, depth);
    return;
  default: {
    const char *type = mml_typename(L, idx);
    if (lua_type(L, idx) == LUA_TNIL)
      mml_error(L, "moonml.json.encode: nil at %s (use ml.json.null for null)", E->path);
    mml_error(L, "moonml.json.encode: a %s at %s cannot be written in JSON%s", type, E->path,
              strcmp(type, "tensor") == 0 ? " (convert it with x:totable() or x:item())" : "");
  }
  }
  if (!item)
    mml_error(L, "moonml.json.encode: out of memory");
  attach(E, parent, key, item);
}

/* encode(value, indent (0: compact), null) -> string */
static int l_encode(lua_State *L) {
  lua_settop(L, 3);
  lua_Integer indent = luaL_checkinteger(L, 2);
  encoder E;
  E.L = L;
  E.null_idx = 3;
  lua_newtable(L);
  E.visiting_idx = lua_gettop(L);
  strcpy(E.path, "value");
  E.path_len = strlen(E.path);
  tree_box *box = new_tree_box(L);
  /* build under a one-element array so the top value is attached like any other */
  box->root = cJSON_CreateArray();
  if (!box->root)
    mml_error(L, "moonml.json.encode: out of memory");
  enc_value(&E, 1, box->root, NULL, 1);
  char *text =
      indent > 0 ? cJSON_Print(box->root->child) : cJSON_PrintUnformatted(box->root->child);
  if (!text)
    mml_error(L, "moonml.json.encode: out of memory");
  if (indent <= 0) {
    lua_pushstring(L, text);
    cJSON_free(text);
    return 1;
  }
  /* cJSON indents with tabs and writes "key":<tab>value; strings hold no raw tab (cJSON
   * escapes it), so every tab is layout: one level of `indent` spaces, or one space after ':' */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *p = text; *p; p++) {
    if (*p == '{' && p[1] == '\n') { /* cJSON writes an empty object over two lines */
      const char *q = p + 2;
      while (*q == '\t')
        q++;
      if (*q == '}') {
        luaL_addstring(&b, "{}");
        p = q;
        continue;
      }
    }
    if (*p != '\t') {
      luaL_addchar(&b, *p);
    } else if (p > text && p[-1] == ':') {
      luaL_addchar(&b, ' ');
    } else {
      for (lua_Integer k = 0; k < indent; k++)
        luaL_addchar(&b, ' ');
    }
  }
  cJSON_free(text);
  luaL_pushresult(&b);
  return 1;
}

/* ------------------------------------------------------------------ decode */

typedef struct {
  lua_State *L;
  int null_idx, array_mt_idx;
} decoder;

static void dec_value(decoder *D, const cJSON *x) {
  lua_State *L = D->L;
  luaL_checkstack(L, 4, "moonml.json.decode: nesting too deep");
  if (cJSON_IsNull(x)) {
    lua_pushvalue(L, D->null_idx);
  } else if (cJSON_IsBool(x)) {
    lua_pushboolean(L, cJSON_IsTrue(x));
  } else if (cJSON_IsNumber(x)) {
    double v = x->valuedouble;
    if (!isfinite(v))
      mml_error(L, "moonml.json.decode: a number is out of the range of a double");
    if (v == floor(v) && fabs(v) < MM_JSON_MAX_EXACT) /* 2^53 may be a rounded 2^53 + 1 */
      lua_pushinteger(L, (lua_Integer)v);
    else
      lua_pushnumber(L, (lua_Number)v);
  } else if (cJSON_IsString(x)) {
    lua_pushstring(L, x->valuestring);
  } else if (cJSON_IsArray(x)) {
    int n = cJSON_GetArraySize(x);
    lua_createtable(L, n, 0);
    if (n == 0) { /* so that it is written back as [] */
      lua_pushvalue(L, D->array_mt_idx);
      lua_setmetatable(L, -2);
    }
    int i = 1;
    for (const cJSON *c = x->child; c; c = c->next) {
      dec_value(D, c);
      lua_rawseti(L, -2, i++);
    }
  } else {
    lua_createtable(L, 0, cJSON_GetArraySize(x));
    for (const cJSON *c = x->child; c; c = c->next) {
      dec_value(D, c);
      lua_setfield(L, -2, c->string);
    }
  }
}

/* Raises the error for malformed text, with line, column and the text there. */
static int parse_error(lua_State *L, const char *s, size_t len, const char *at) {
  size_t pos = at && at >= s && at <= s + len ? (size_t)(at - s) : 0;
  int64_t line, col;
  mm_text_position(s, pos, &line, &col);
  if (mm_json_depth_at(s, pos, NULL) >= JSON_MAX_DEPTH)
    return mml_error(L, "moonml.json.decode: nesting deeper than %d levels at line %d, column %d",
                     JSON_MAX_DEPTH, (int)line, (int)col);
  if (pos >= len) {
    /* cJSON points past the end both for a cut text and for a bad last character: a text
     * whose brackets and strings are all closed did not end early */
    bool in_string;
    size_t last = len;
    while (last > 0 && strchr(" \t\r\n", s[last - 1]))
      last--;
    if (last == 0 || mm_json_depth_at(s, len, &in_string) > 0 || in_string)
      return mml_error(L,
                       "moonml.json.decode: malformed JSON: the text ends early (line %d, "
                       "column %d)",
                       (int)line, (int)col);
    pos = last - 1;
    mm_text_position(s, pos, &line, &col);
  }
  size_t show = len - pos < 20 ? len - pos : 20;
  return mml_error(L, "moonml.json.decode: malformed JSON at line %d, column %d, near '%s'",
                   (int)line, (int)col, lua_pushlstring(L, s + pos, show));
}

/* decode(text, null, array_mt) -> value */
static int l_decode(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    mml_error(L, "moonml.json.decode: expected a string as argument 1, got %s", mml_typename(L, 1));
  lua_settop(L, 3);
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  int64_t bad = mm_utf8_invalid_at(s, len);
  if (bad >= 0) {
    int64_t line, col;
    mm_text_position(s, (size_t)bad, &line, &col);
    mml_error(L, "moonml.json.decode: %s at line %d, column %d",
              s[bad] ? "the text is not valid UTF-8" : "a zero byte", (int)line, (int)col);
  }
  tree_box *box = new_tree_box(L);
  const char *end = NULL;
  box->root = cJSON_ParseWithLengthOpts(s, len + 1, &end, 1); /* Lua's closing NUL ends it */
  if (!box->root)
    return parse_error(L, s, len, end);
  /* "\u0000" would cut a string short in cJSON: refuse it (in valid JSON every backslash
   * starts an escape, so skipping the escaped character keeps the scan in step) */
  for (size_t i = 0; i + 1 < len; i++)
    if (s[i] == '\\') {
      if (i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0) {
        int64_t line, col;
        mm_text_position(s, i, &line, &col);
        mml_error(L,
                  "moonml.json.decode: \\u0000 (a zero character) at line %d, column %d "
                  "cannot be held in a string",
                  (int)line, (int)col);
      }
      i++;
    }
  decoder D = {L, 2, 3};
  dec_value(&D, box->root);
  return 1;
}

static const luaL_Reg json_funcs[] = {{"encode", l_encode}, {"decode", l_decode}, {NULL, NULL}};

void mml_open_json(lua_State *L, const mml_open_state *st) {
  lua_newtable(L);
  mml_register(L, st, lua_absindex(L, -1), json_funcs);
  lua_setfield(L, st->module, "_json");
}
