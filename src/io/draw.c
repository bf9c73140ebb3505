/* Drawing on an image tensor (float32, C x H x W, contiguous) for ml.plot: filled
 * rectangles, anti-aliased polylines and round markers, and text in a built-in 5 x 9 bitmap
 * font. Coordinates are pixels from the top-left corner; pixel (row i, column j) covers
 * [j, j + 1) x [i, i + 1), so its centre is at (j + 0.5, i + 0.5). */
#include "../core/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The printable ASCII characters 32..126, MM_FONT_WIDTH columns each: rows 0-6 hold capitals
 * and digits, rows 7-8 the descenders of g, j, p, q, y and the comma. Rows not listed are
 * blank. */
static const char *const font[95][MM_FONT_HEIGHT] = {
    /* clang-format off */
    {".....", ".....", ".....", ".....", ".....", ".....", "....."}, /* space */
    {"..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."}, /* ! */
    {".#.#.", ".#.#.", ".#.#.", ".....", ".....", ".....", "....."}, /* " */
    {".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."}, /* # */
    {"..#..", ".####", "#.#..", ".###.", "..#.#", "####.", "..#.."}, /* $ */
    {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}, /* % */
    {".##..", "#..#.", "#.#..", ".#...", "#.#.#", "#..#.", ".##.#"}, /* & */
    {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."}, /* ' */
    {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}, /* ( */
    {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}, /* ) */
    {".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."}, /* star */
    {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}, /* + */
    {".....", ".....", ".....", ".....", ".....", ".##..", ".##..", "..#..", ".#..."}, /* , */
    {".....", ".....", ".....", ".####", ".....", ".....", "....."}, /* - */
    {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}, /* . */
    {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}, /* slash */
    {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}, /* 0 */
    {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}, /* 1 */
    {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}, /* 2 */
    {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}, /* 3 */
    {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}, /* 4 */
    {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}, /* 5 */
    {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}, /* 6 */
    {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}, /* 7 */
    {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}, /* 8 */
    {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}, /* 9 */
    {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}, /* : */
    {".....", ".##..", ".##..", ".....", ".##..", ".##..", "..#..", ".#..."}, /* ; */
    {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."}, /* < */
    {".....", ".....", "#####", ".....", "#####", ".....", "....."}, /* = */
    {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."}, /* > */
    {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}, /* ? */
    {".###.", "#...#", "....#", ".##.#", "#.#.#", "#.#.#", ".###."}, /* @ */
    {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}, /* A */
    {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}, /* B */
    {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}, /* C */
    {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."}, /* D */
    {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}, /* E */
    {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}, /* F */
    {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}, /* G */
    {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}, /* H */
    {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}, /* I */
    {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}, /* J */
    {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}, /* K */
    {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}, /* L */
    {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}, /* M */
    {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}, /* N */
    {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}, /* O */
    {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}, /* P */
    {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}, /* Q */
    {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}, /* R */
    {".####", "#....", "#....", ".###.", "....#", "....#", "####."}, /* S */
    {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}, /* T */
    {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}, /* U */
    {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}, /* V */
    {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}, /* W */
    {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}, /* X */
    {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}, /* Y */
    {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}, /* Z */
    {".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."}, /* [ */
    {".....", "#....", ".#...", "..#..", "...#.", "....#", "....."}, /* backslash */
    {".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."}, /* ] */
    {"..#..", ".#.#.", "#...#", ".....", ".....", ".....", "....."}, /* ^ */
    {".....", ".....", ".....", ".....", ".....", ".....", ".....", "#####"}, /* _ */
    {".#...", "..#..", "...#.", ".....", ".....", ".....", "....."}, /* ` */
    {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}, /* a */
    {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."}, /* b */
    {".....", ".....", ".###.", "#....", "#....", "#...#", ".###."}, /* c */
    {"....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"}, /* d */
    {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}, /* e */
    {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."}, /* f */
    {".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", ".###."}, /* g */
    {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"}, /* h */
    {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."}, /* i */
    {"...#.", ".....", "..##.", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}, /* j */
    {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."}, /* k */
    {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}, /* l */
    {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#.#.#", "#.#.#"}, /* m */
    {".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"}, /* n */
    {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."}, /* o */
    {".....", ".....", "####.", "#...#", "#...#", "#...#", "####.", "#....", "#...."}, /* p */
    {".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", "....#"}, /* q */
    {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."}, /* r */
    {".....", ".....", ".####", "#....", ".###.", "....#", "####."}, /* s */
    {".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."}, /* t */
    {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"}, /* u */
    {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."}, /* v */
    {".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."}, /* w */
    {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"}, /* x */
    {".....", ".....", "#...#", "#...#", "#...#", "#...#", ".####", "....#", ".###."}, /* y */
    {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"}, /* z */
    {"...##", "..#..", "..#..", ".#...", "..#..", "..#..", "...##"}, /* { */
    {"..#..", "..#..", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}, /* | */
    {"##...", "..#..", "..#..", "...#.", "..#..", "..#..", "##..."}, /* } */
    {".....", ".....", ".#...", "#.#.#", "...#.", ".....", "....."}, /* ~ */
    /* clang-format on */
};

/* The canvas must be a float32, contiguous C x H x W tensor with C in 1..4 that no gradient
 * flows through; its data goes to *px. Each successful draw bumps its version (in place). */
static int check_canvas(mm_ctx *ctx, const char *op, mm_tensor *canvas, float **px) {
  if (canvas->dtype != MM_FLOAT32 || canvas->ndim != 3 || canvas->shape[0] < 1 ||
      canvas->shape[0] > 4 || !mm_is_contiguous(canvas))
    return mm_fail(ctx,
                   "moonml.%s: the canvas must be a contiguous float32 C x H x W tensor "
                   "with 1 to 4 channels",
                   op);
  if (canvas->requires_grad || canvas->grad_fn)
    return mm_fail(ctx, "moonml.%s: cannot draw on a tensor that is part of a gradient graph", op);
  *px = mm_data(canvas);
  return 0;
}

/* Mixes colour into pixel (i, j) with weight a in [0, 1]. */
static inline void blend(float *px, int64_t plane, int64_t at, int nc, const float *color,
                         float a) {
  for (int c = 0; c < nc; c++) {
    float *p = px + c * plane + at;
    *p += (color[c] - *p) * a;
  }
}

int mm_draw_rect(mm_ctx *ctx, mm_tensor *canvas, int64_t x0, int64_t y0, int64_t x1, int64_t y1,
                 const float *color) {
  float *px = NULL;
  if (check_canvas(ctx, "draw_rect", canvas, &px) != 0)
    return -1;
  int64_t h = canvas->shape[1], w = canvas->shape[2], plane = h * w;
  x0 = x0 < 0 ? 0 : x0;
  y0 = y0 < 0 ? 0 : y0;
  x1 = x1 > w ? w : x1;
  y1 = y1 > h ? h : y1;
  for (int c = 0; c < canvas->shape[0]; c++)
    for (int64_t i = y0; i < y1; i++)
      for (int64_t j = x0; j < x1; j++)
        px[c * plane + i * w + j] = color[c];
  mm_bump_version(canvas);
  return 0;
}

/* Distance from (px, py) to the segment (ax, ay) - (bx, by). */
static double segment_distance(double px, double py, double ax, double ay, double bx, double by) {
  double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  double ex = ax + t * dx - px, ey = ay + t * dy - py;
  return sqrt(ex * ex + ey * ey);
}

/* The covered fraction of a pixel whose centre lies d from a shape's core of half-width r:
 * a one-pixel ramp across the edge. */
static inline float coverage(double d, double r) {
  double a = r + 0.5 - d;
  return (float)(a <= 0 ? 0 : a >= 1 ? 1 : a);
}

typedef struct {
  int64_t x0, y0, x1, y1; /* pixel box, x1/y1 exclusive */
} box;

static box shape_box(double xa, double ya, double xb, double yb, double r, int64_t w, int64_t h) {
  box b;
  double pad = r + 1;
  b.x0 = (int64_t)fmax(0, floor(fmin(xa, xb) - pad));
  b.y0 = (int64_t)fmax(0, floor(fmin(ya, yb) - pad));
  b.x1 = (int64_t)fmin((double)w, ceil(fmax(xa, xb) + pad));
  b.y1 = (int64_t)fmin((double)h, ceil(fmax(ya, yb) + pad));
  return b;
}

/* Coverages are gathered per pixel (the largest over the segments) before any blending, so
 * that the joints of a polyline are not painted twice. */
int mm_draw_polyline(mm_ctx *ctx, mm_tensor *canvas, const double *xy, int64_t n, double width,
                     const float *color) {
  float *px = NULL;
  if (check_canvas(ctx, "draw_polyline", canvas, &px) != 0)
    return -1;
  if (!(width > 0) || width > 1000)
    return mm_fail(ctx, "moonml.draw_polyline: width must be in (0, 1000], got %g", width);
  int64_t h = canvas->shape[1], w = canvas->shape[2], plane = h * w;
  if (n < 1 || plane == 0)
    return 0;
  float *cov = calloc((size_t)plane, sizeof *cov);
  if (!cov)
    return mm_fail(ctx, "moonml.draw_polyline: out of memory");
  double r = width / 2;
  box all = {w, h, 0, 0};
  for (int64_t k = 0; k < n; k++) {
    /* a point without a neighbour draws a dot; a non-finite point breaks the line */
    const double *a = xy + 2 * k, *b = k + 1 < n ? xy + 2 * (k + 1) : a;
    if (!isfinite(a[0]) || !isfinite(a[1]))
      continue;
    if (!isfinite(b[0]) || !isfinite(b[1]))
      b = a;
    if (b == a && k > 0 && isfinite(a[-2]) && isfinite(a[-1]))
      continue; /* the end of a drawn segment */
    /* far outside the canvas: clip the work, not the shape */
    if (fmax(a[0], b[0]) < -r - 1 || fmin(a[0], b[0]) > (double)w + r + 1 ||
        fmax(a[1], b[1]) < -r - 1 || fmin(a[1], b[1]) > (double)h + r + 1)
      continue;
    box bb = shape_box(a[0], a[1], b[0], b[1], r, w, h);
    for (int64_t i = bb.y0; i < bb.y1; i++)
      for (int64_t j = bb.x0; j < bb.x1; j++) {
        float c = coverage(segment_distance(j + 0.5, i + 0.5, a[0], a[1], b[0], b[1]), r);
        if (c > cov[i * w + j])
          cov[i * w + j] = c;
      }
    all.x0 = bb.x0 < all.x0 ? bb.x0 : all.x0;
    all.y0 = bb.y0 < all.y0 ? bb.y0 : all.y0;
    all.x1 = bb.x1 > all.x1 ? bb.x1 : all.x1;
    all.y1 = bb.y1 > all.y1 ? bb.y1 : all.y1;
  }
  int nc = (int)canvas->shape[0];
  for (int64_t i = all.y0; i < all.y1; i++)
    for (int64_t j = all.x0; j < all.x1; j++)
      if (cov[i * w + j] > 0)
        blend(px, plane, i * w + j, nc, color, cov[i * w + j]);
  free(cov);
  mm_bump_version(canvas);
  return 0;
}

int mm_draw_markers(mm_ctx *ctx, mm_tensor *canvas, const double *xy, int64_t n, double radius,
                    const float *color) {
  float *px = NULL;
  if (check_canvas(ctx, "draw_markers", canvas, &px) != 0)
    return -1;
  if (!(radius > 0) || radius > 1000)
    return mm_fail(ctx, "moonml.draw_markers: radius must be in (0, 1000], got %g", radius);
  int64_t h = canvas->shape[1], w = canvas->shape[2], plane = h * w;
  int nc = (int)canvas->shape[0];
  for (int64_t k = 0; k < n; k++) {
    double cx = xy[2 * k], cy = xy[2 * k + 1];
    if (!isfinite(cx) || !isfinite(cy) || cx < -radius - 1 || cy < -radius - 1 ||
        cx > (double)w + radius + 1 || cy > (double)h + radius + 1)
      continue;
    box bb = shape_box(cx, cy, cx, cy, radius, w, h);
    for (int64_t i = bb.y0; i < bb.y1; i++)
      for (int64_t j = bb.x0; j < bb.x1; j++) {
        double dx = j + 0.5 - cx, dy = i + 0.5 - cy;
        float c = coverage(sqrt(dx * dx + dy * dy), radius);
        if (c > 0)
          blend(px, plane, i * w + j, nc, color, c);
      }
  }
  mm_bump_version(canvas);
  return 0;
}

int mm_draw_text(mm_ctx *ctx, mm_tensor *canvas, const char *text, int64_t x, int64_t y, int scale,
                 bool vertical, const float *color) {
  float *px = NULL;
  if (check_canvas(ctx, "draw_text", canvas, &px) != 0)
    return -1;
  if (scale < 1 || scale > 64)
    return mm_fail(ctx, "moonml.draw_text: scale must be 1 to 64, got %d", scale);
  int64_t h = canvas->shape[1], w = canvas->shape[2], plane = h * w;
  int nc = (int)canvas->shape[0];
  int64_t len = (int64_t)strlen(text), run = len * MM_FONT_ADVANCE * scale;
  const int64_t far = (int64_t)1 << 40; /* beyond it nothing shows (and sums cannot overflow) */
  if (x < -far || x > far || y < -far || y > far)
    return 0;
  for (int64_t k = 0; k < len; k++) {
    unsigned char ch = (unsigned char)text[k];
    const char *const *g = font[ch >= 32 && ch < 127 ? ch - 32 : '?' - 32];
    for (int gy = 0; gy < MM_FONT_HEIGHT && g[gy]; gy++)
      for (int gx = 0; gx < MM_FONT_WIDTH; gx++) {
        if (g[gy][gx] != '#')
          continue;
        /* the text's own coordinates: u along the line, v down from its top */
        int64_t u = (k * MM_FONT_ADVANCE + gx) * scale, v = (int64_t)gy * scale;
        for (int sy = 0; sy < scale; sy++)
          for (int sx = 0; sx < scale; sx++) {
            /* vertical text reads upwards: turned a quarter turn anticlockwise */
            int64_t col = vertical ? x + v + sy : x + u + sx;
            int64_t row = vertical ? y + run - 1 - (u + sx) : y + v + sy;
            if (row >= 0 && row < h && col >= 0 && col < w)
              for (int c = 0; c < nc; c++)
                px[c * plane + row * w + col] = color[c];
          }
      }
  }
  mm_bump_version(canvas);
  return 0;
}
