/* Internal interface between the ops and the autograd engine.
 *
 * An op that may need a gradient does, after computing its output `out`:
 *
 *   mm_node *node;
 *   if (mm_node_begin(ctx, "MulBackward", mul_backward, 2, inputs, &node) != 0) fail;
 *   if (node) {                       // NULL: grad mode off or no input needs grad
 *     mm_node_save(ctx, node, a); ... // tensors backward will read
 *     mm_node_attach(node, out);      // out->grad_fn = node, out->requires_grad
 *   }
 *
 * Its backward, beside the forward in the same file, gets d(loss)/d(out) and fills
 * grad_in[k] for every input k with node->in[k].needs_grad (others may stay NULL). A
 * gradient may have a broadcast shape: the engine sums it back to the input's shape. */
#ifndef MM_AUTOGRAD_H
#define MM_AUTOGRAD_H

#include "../core/internal.h"

#define MM_NODE_MAX_INPUTS 4
#define MM_NODE_MAX_SAVED 4

/* Where a view sits in its storage. */
typedef struct mm_geom {
  int ndim;
  int64_t offset;
  int64_t shape[MM_MAX_DIMS], stride[MM_MAX_DIMS];
} mm_geom;

/* AsStridedBackward and CopySlices (engine.c): a view and its base, by geometry. */
typedef struct mm_view_info {
  int64_t storage_numel; /* elements of the storage they share */
  mm_geom base, view;
  mm_node *inner; /* CopySlices: the in-place op's own node, its input 0 being the view */
} mm_view_info;

typedef int (*mm_backward_fn)(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                              mm_tensor **grad_in);

typedef struct mm_edge {
  mm_node *node;   /* where the input's gradient goes next, or NULL */
  mm_tensor *leaf; /* ... or the leaf whose .grad accumulates it */
  bool needs_grad;
  mm_dtype dtype;
  int ndim;
  int64_t shape[MM_MAX_DIMS];
} mm_edge;

struct mm_node {
  int refcount;
  const char *name;
  mm_backward_fn backward;
  int n_inputs;
  mm_edge in[MM_NODE_MAX_INPUTS];
  int n_saved;
  mm_tensor *saved[MM_NODE_MAX_SAVED]; /* detached views: no cycle through grad_fn */
  uint32_t saved_version[MM_NODE_MAX_SAVED];
  double f[4]; /* op parameters */
  int64_t i[MM_MAX_DIMS];
  mm_view_info *view; /* AsStridedBackward and CopySlices only */
  bool freed;         /* saved tensors released by a backward without retain_graph */
  /* engine scratch, valid during one mm_backward */
  mm_tensor *grad_acc;
  int deps;
  int mark;
};

int mm_node_begin(mm_ctx *ctx, const char *name, mm_backward_fn fn, int n_inputs,
                  const mm_tensor *const *inputs, mm_node **out);
int mm_node_save(mm_ctx *ctx, mm_node *node, const mm_tensor *t);
void mm_node_attach(mm_node *node, mm_tensor *out);
void mm_node_retain(mm_node *node);
void mm_node_release(mm_node *node);
/* A view op calls this on its new view v of t: v remembers the base it views. */
void mm_view_track(mm_tensor *v, const mm_tensor *t);

/* In-place ops. Before changing inputs[0] in place:
 *
 *   mm_node *node;
 *   if (mm_inplace_begin(ctx, "fill_", "FillBackward", fill_backward, 1, inputs, &node) != 0)
 *     fail;                               // a leaf that requires grad, or a view of one
 *   ... change it, mm_bump_version(t) ...
 *   if (mm_inplace_attach(ctx, node, t) != 0) fail;
 *
 * node (NULL when nothing needs grad) is an ordinary node whose input 0 is t's value
 * before the change; attach makes it t's history, and when t is a view it rewrites the
 * base's history through a CopySlices node instead (PyTorch's scheme). */
int mm_inplace_begin(mm_ctx *ctx, const char *op, const char *name, mm_backward_fn fn, int n_inputs,
                     const mm_tensor *const *inputs, mm_node **out);
int mm_inplace_attach(mm_ctx *ctx, mm_node *node, mm_tensor *t);

/* Sums g over broadcast dims so that it has the given shape (new reference). */
mm_tensor *mm_sum_to_shape(mm_ctx *ctx, const mm_tensor *g, int ndim, const int64_t *shape);

#endif
