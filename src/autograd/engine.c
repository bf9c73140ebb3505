/* The autograd engine: graph nodes, and the reverse pass over them in topological
 * order. Gradients for leaves are gathered first and written to .grad only when the
 * whole pass has succeeded, so a failing backward leaves every .grad as it was. */
#include "autograd.h"

#include <stdlib.h>
#include <string.h>

bool mm_grad_enabled(const mm_ctx *ctx) { return ctx->grad_enabled; }

bool mm_set_grad_enabled(mm_ctx *ctx, bool on) {
  bool old = ctx->grad_enabled;
  ctx->grad_enabled = on;
  return old;
}

void mm_bump_version(mm_tensor *t) { t->storage->version++; }

const char *mm_node_name(const mm_node *node) { return node->name; }

/* ------------------------------------------------------------------ nodes */

/* The edge along which t's gradient flows: to its grad_fn, or to t itself as a leaf. */
static void edge_from(mm_edge *e, const mm_tensor *t) {
  e->needs_grad = true;
  e->dtype = t->dtype;
  e->ndim = t->ndim;
  memcpy(e->shape, t->shape, sizeof e->shape);
  if (t->grad_fn) {
    e->node = t->grad_fn;
    mm_node_retain(e->node);
  } else {
    e->leaf = (mm_tensor *)t;
    mm_retain(e->leaf);
  }
}

static mm_node *new_node(mm_ctx *ctx, const char *name, mm_backward_fn fn, int n_inputs) {
  mm_node *node = calloc(1, sizeof *node);
  if (!node) {
    mm_fail(ctx, "moonml.%s: out of memory recording the graph", name);
    return NULL;
  }
  /* counted with the storages the binding reports to Lua's collector: a graph held by
   * an uncollected loss is native memory too (600 bytes a node), and a training loop
   * that does not report it lets millions of nodes pile up between collections */
  ctx->allocated += sizeof *node;
  node->refcount = 1;
  node->name = name;
  node->backward = fn;
  node->n_inputs = n_inputs;
  return node;
}

int mm_node_begin(mm_ctx *ctx, const char *name, mm_backward_fn fn, int n_inputs,
                  const mm_tensor *const *inputs, mm_node **out) {
  *out = NULL;
  if (!ctx->grad_enabled)
    return 0;
  bool any = false;
  for (int k = 0; k < n_inputs; k++) {
    if (!inputs[k])
      continue;
    /* a view whose base changed in place first takes its history from the base */
    if (inputs[k]->base && mm_sync_view(ctx, (mm_tensor *)inputs[k]) != 0)
      return -1;
    any = any || inputs[k]->requires_grad;
  }
  if (!any)
    return 0;
  mm_node *node = new_node(ctx, name, fn, n_inputs);
  if (!node)
    return -1;
  for (int k = 0; k < n_inputs; k++)
    if (inputs[k] && inputs[k]->requires_grad)
      edge_from(&node->in[k], inputs[k]);
  *out = node;
  return 0;
}

int mm_node_save(mm_ctx *ctx, mm_node *node, const mm_tensor *t) {
  if (node->n_saved == MM_NODE_MAX_SAVED)
    return mm_fail(ctx, "moonml.%s: too many saved tensors", node->name);
  mm_tensor *d = mm_detach(ctx, t);
  if (!d)
    return -1;
  ctx->allocated += sizeof *d; /* the detached header, as new_node's comment */
  node->saved_version[node->n_saved] = t->storage->version;
  node->saved[node->n_saved++] = d;
  return 0;
}

void mm_node_attach(mm_node *node, mm_tensor *out) {
  mm_node_release(out->grad_fn);
  out->grad_fn = node;
  out->requires_grad = true;
}

void mm_node_retain(mm_node *node) { node->refcount++; }

static void free_saved(mm_node *node) {
  for (int s = 0; s < node->n_saved; s++) {
    mm_release(node->saved[s]);
    node->saved[s] = NULL;
  }
  if (node->view && node->view->inner) /* CopySlices: the in-place op's node saves for it */
    free_saved(node->view->inner);
}

static bool has_saved(const mm_node *node) {
  return node->n_saved > 0 || (node->view && node->view->inner && has_saved(node->view->inner));
}

/* Iterative, so that releasing a graph a million nodes long cannot overflow the stack. */
void mm_node_release(mm_node *node) {
  if (!node || --node->refcount > 0)
    return;
  size_t cap = 16, n = 0;
  mm_node **stack = malloc(cap * sizeof *stack);
  mm_node *cur = node;
  for (;;) {
    for (int k = 0; k <= cur->n_inputs; k++) {
      mm_node *next;
      if (k < cur->n_inputs) {
        mm_release(cur->in[k].leaf);
        next = cur->in[k].node;
      } else { /* CopySlices owns the in-place op's node */
        next = cur->view ? cur->view->inner : NULL;
      }
      if (next && --next->refcount == 0) {
        if (n == cap) {
          mm_node **grown = stack ? realloc(stack, 2 * cap * sizeof *stack) : NULL;
          if (!grown) { /* no room to defer: recurse for this one */
            next->refcount = 1;
            mm_node_release(next);
            continue;
          }
          stack = grown;
          cap *= 2;
        }
        stack[n++] = next;
      }
    }
    free_saved(cur);
    mm_release(cur->grad_acc);
    free(cur->view);
    free(cur);
    if (n == 0)
      break;
    cur = stack[--n];
  }
  free(stack);
}

/* ------------------------------------------------------------------ tensors */

mm_tensor *mm_detach(mm_ctx *ctx, const mm_tensor *t) { return mm_tensor_view_of(ctx, t); }

int mm_set_requires_grad(mm_ctx *ctx, mm_tensor *t, bool flag) {
  if (flag && !mm_dtype_is_float(t->dtype))
    return mm_fail(ctx,
                   "moonml.requires_grad_: only floating-point tensors can require "
                   "gradients, got %s",
                   mm_dtype_name(t->dtype));
  if (t->grad_fn && !flag)
    return mm_fail(ctx, "moonml.requires_grad_: only leaf tensors can stop requiring grad; "
                        "use detach()");
  if (!t->grad_fn)
    t->requires_grad = flag;
  return 0;
}

mm_tensor *mm_sum_to_shape(mm_ctx *ctx, const mm_tensor *g, int ndim, const int64_t *shape) {
  bool same = g->ndim == ndim;
  for (int d = 0; same && d < ndim; d++)
    same = g->shape[d] == shape[d];
  if (same) {
    mm_retain((mm_tensor *)g);
    return (mm_tensor *)g;
  }
  int lead = g->ndim - ndim;
  mm_tensor *cur = (mm_tensor *)g;
  mm_retain(cur);
  /* broadcast dims of size 1: summed with keepdim; leading dims: summed away */
  for (int d = g->ndim - 1; d >= 0; d--) {
    bool leading = d < lead;
    if (!leading && !(shape[d - lead] == 1 && cur->shape[d] != 1))
      continue;
    mm_tensor *next = mm_reduce_dim(ctx, MM_RED_SUM, cur, d, !leading, NULL);
    mm_release(cur);
    if (!next)
      return NULL;
    cur = next;
  }
  mm_tensor *out = mm_reshape(ctx, cur, ndim, shape);
  mm_release(cur);
  return out;
}

/* ------------------------------------------------------------------ views, in place */

static bool has_overlap(const mm_tensor *t) {
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] > 1 && t->stride[d] == 0)
      return true;
  return false;
}

static void set_view_fn(mm_tensor *t, mm_node *fn) {
  if (fn)
    mm_node_retain(fn);
  mm_node_release(t->view_fn);
  t->view_fn = fn;
}

void mm_view_track(mm_tensor *v, const mm_tensor *t) {
  mm_tensor *root = t->base ? t->base : (mm_tensor *)t;
  mm_retain(root);
  v->base = root;
  v->view_fn = NULL;
  set_view_fn(v, root->grad_fn);
}

static void geom_of(mm_geom *g, const mm_tensor *t) {
  g->ndim = t->ndim;
  g->offset = t->offset;
  memcpy(g->shape, t->shape, sizeof g->shape);
  memcpy(g->stride, t->stride, sizeof g->stride);
}

/* A header over buf's storage with geometry g (no autograd). */
static mm_tensor *as_strided(mm_ctx *ctx, const mm_tensor *buf, const mm_geom *g) {
  mm_tensor *v = mm_tensor_view_of(ctx, buf);
  if (v) {
    v->ndim = g->ndim;
    v->offset = g->offset;
    memcpy(v->shape, g->shape, sizeof v->shape);
    memcpy(v->stride, g->stride, sizeof v->stride);
  }
  return v;
}

/* buf[view geometry] = g; where the view repeats an element (stride 0), the gradients of
 * its copies are summed first. */
static int scatter_view(mm_ctx *ctx, const mm_tensor *buf, const mm_geom *geom,
                        const mm_tensor *g) {
  mm_tensor *v = as_strided(ctx, buf, geom);
  if (!v)
    return -1;
  mm_tensor *src = (mm_tensor *)g;
  mm_retain(src);
  for (int d = 0; d < v->ndim && src; d++) {
    if (v->stride[d] != 0 || v->shape[d] <= 1)
      continue;
    mm_tensor *sum = mm_reduce_dim(ctx, MM_RED_SUM, src, d, true, NULL);
    mm_release(src);
    src = sum;
    v->shape[d] = 1;
  }
  int st = src ? mm_copy_raw(ctx, v, src) : -1;
  mm_release(src);
  mm_release(v);
  return st;
}

/* The gradient of a view with respect to its base, by geometry: for views whose history
 * is rebuilt after an in-place change. */
static int as_strided_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g,
                               mm_tensor **grad_in) {
  const mm_view_info *vi = node->view;
  mm_tensor *buf = mm_zeros(ctx, g->dtype, 1, &vi->storage_numel);
  int st = buf ? scatter_view(ctx, buf, &vi->view, g) : -1;
  if (st == 0 && !(grad_in[0] = as_strided(ctx, buf, &vi->base)))
    st = -1;
  mm_release(buf);
  return st;
}

static int check_saved(mm_ctx *ctx, const mm_node *node);

/* The base's history after an in-place op on a view of it: outside the view the gradient
 * goes to the base's earlier history; inside it the in-place op's node takes it. */
static int copy_slices_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g,
                                mm_tensor **grad_in) {
  const mm_view_info *vi = node->view;
  mm_node *inner = vi->inner;
  if (check_saved(ctx, inner) != 0)
    return -1;
  mm_tensor *res[MM_NODE_MAX_INPUTS] = {NULL};
  mm_tensor *slice = NULL, *buf = mm_zeros(ctx, g->dtype, 1, &vi->storage_numel);
  mm_tensor *bv = buf ? as_strided(ctx, buf, &vi->base) : NULL;
  mm_tensor *vv = bv ? as_strided(ctx, buf, &vi->view) : NULL;
  int st = vv ? mm_copy_raw(ctx, bv, g) : -1;
  if (st == 0)
    st = (slice = mm_clone_raw(ctx, vv)) ? 0 : -1;
  if (st == 0)
    st = inner->backward(ctx, inner, slice, res);
  if (st == 0 && node->in[0].needs_grad) {
    if (res[0]) {
      mm_tensor *r = mm_sum_to_shape(ctx, res[0], vv->ndim, vv->shape);
      st = r ? mm_copy_raw(ctx, vv, r) : -1;
      mm_release(r);
    } else {
      st = mm_fill_(ctx, vv, 0);
    }
    if (st == 0) {
      grad_in[0] = bv;
      bv = NULL;
    }
  }
  for (int k = 0; k < node->n_inputs; k++) {
    if (st == 0 && k > 0) {
      grad_in[k] = res[k];
      res[k] = NULL;
    }
    mm_release(res[k]);
  }
  mm_release(slice);
  mm_release(vv);
  mm_release(bv);
  mm_release(buf);
  return st;
}

/* A node reading view's gradient into base's, by geometry (with edge 0 to base). */
static mm_node *new_view_node(mm_ctx *ctx, const char *name, mm_backward_fn fn, int n_inputs,
                              const mm_tensor *base, const mm_tensor *view) {
  mm_node *node = new_node(ctx, name, fn, n_inputs);
  mm_view_info *vi = node ? calloc(1, sizeof *vi) : NULL;
  if (!vi) {
    free(node);
    mm_fail(ctx, "moonml.%s: out of memory recording the graph", name);
    return NULL;
  }
  node->view = vi;
  vi->storage_numel = (int64_t)(base->storage->nbytes / mm_dtype_size(base->dtype));
  geom_of(&vi->base, base);
  geom_of(&vi->view, view);
  if (base->requires_grad)
    edge_from(&node->in[0], base);
  return node;
}

int mm_sync_view(mm_ctx *ctx, mm_tensor *t) {
  mm_tensor *b = t->base;
  if (!b || b->grad_fn == t->view_fn)
    return 0;
  bool leaf = t->requires_grad && !t->grad_fn; /* made a leaf by requires_grad_: stays one */
  if (!leaf && b->requires_grad) {
    mm_node *node = new_view_node(ctx, "AsStridedBackward", as_strided_backward, 1, b, t);
    if (!node)
      return -1;
    mm_node_attach(node, t);
  }
  set_view_fn(t, b->grad_fn);
  return 0;
}

int mm_inplace_begin(mm_ctx *ctx, const char *op, const char *name, mm_backward_fn fn, int n_inputs,
                     const mm_tensor *const *inputs, mm_node **out) {
  *out = NULL;
  if (!ctx->grad_enabled)
    return 0;
  mm_tensor *t = (mm_tensor *)inputs[0], *b = t->base;
  if (b && mm_sync_view(ctx, t) != 0)
    return -1;
  if (t->requires_grad && !t->grad_fn)
    return mm_fail(ctx,
                   "moonml.%s: a leaf tensor that requires grad cannot be changed in place "
                   "(use ml.no_grad or detach)",
                   op);
  if (b && b->requires_grad && !b->grad_fn)
    return mm_fail(ctx,
                   "moonml.%s: a view of a leaf tensor that requires grad cannot be changed "
                   "in place (use ml.no_grad or detach)",
                   op);
  if (b && b->requires_grad && !t->requires_grad) { /* a view made with grad mode off */
    mm_node *as = new_view_node(ctx, "AsStridedBackward", as_strided_backward, 1, b, t);
    if (!as)
      return -1;
    mm_node_attach(as, t);
  }
  if (mm_node_begin(ctx, name, fn, n_inputs, inputs, out) != 0)
    return -1;
  if (*out && (has_overlap(t) || (b && has_overlap(b)))) {
    mm_node_release(*out);
    *out = NULL;
    return mm_fail(ctx,
                   "moonml.%s: cannot record an in-place change of a tensor whose elements "
                   "share memory (an expanded view); clone() it first",
                   op);
  }
  return 0;
}

int mm_inplace_attach(mm_ctx *ctx, mm_node *node, mm_tensor *t) {
  if (!node)
    return 0;
  mm_tensor *b = t->base;
  if (!b) {
    mm_node_attach(node, t);
    return 0;
  }
  mm_node *cs = new_view_node(ctx, "CopySlices", copy_slices_backward, node->n_inputs, b, t);
  if (!cs) {
    mm_node_release(node);
    return -1;
  }
  for (int k = 1; k < node->n_inputs; k++) {
    cs->in[k] = node->in[k];
    if (cs->in[k].node)
      mm_node_retain(cs->in[k].node);
    if (cs->in[k].leaf)
      mm_retain(cs->in[k].leaf);
  }
  /* the view's earlier value is part of the base's: its gradient goes there, not here */
  mm_edge *e0 = &node->in[0];
  mm_node_release(e0->node);
  mm_release(e0->leaf);
  e0->node = NULL;
  e0->leaf = NULL;
  e0->needs_grad = cs->in[0].needs_grad;
  cs->view->inner = node;
  mm_node_attach(cs, b);
  return mm_sync_view(ctx, t); /* t: a view of the new history */
}

/* ------------------------------------------------------------------ backward */

typedef struct {
  mm_tensor *leaf;
  mm_tensor *grad;
} pending_grad;

typedef struct {
  mm_node **nodes; /* every node reached, in discovery order */
  size_t n, cap;
  pending_grad *leaves;
  size_t nleaves, leafcap;
} pass_state;

static int push_node(mm_ctx *ctx, pass_state *ps, mm_node *node) {
  if (ps->n == ps->cap) {
    size_t cap = ps->cap ? 2 * ps->cap : 64;
    mm_node **grown = realloc(ps->nodes, cap * sizeof *grown);
    if (!grown)
      return mm_fail(ctx, "moonml.backward: out of memory");
    ps->nodes = grown;
    ps->cap = cap;
  }
  ps->nodes[ps->n++] = node;
  return 0;
}

/* acc <- acc + g (both owned); g is consumed. */
static int accumulate(mm_ctx *ctx, mm_tensor **acc, mm_tensor *g) {
  if (!*acc) {
    *acc = g;
    return 0;
  }
  mm_tensor *sum = mm_binary(ctx, MM_OP_ADD, *acc, g);
  mm_release(g);
  if (!sum)
    return -1;
  mm_release(*acc);
  *acc = sum;
  return 0;
}

static int add_leaf_grad(mm_ctx *ctx, pass_state *ps, mm_tensor *leaf, mm_tensor *g) {
  for (size_t i = 0; i < ps->nleaves; i++)
    if (ps->leaves[i].leaf == leaf)
      return accumulate(ctx, &ps->leaves[i].grad, g);
  if (ps->nleaves == ps->leafcap) {
    size_t cap = ps->leafcap ? 2 * ps->leafcap : 16;
    pending_grad *grown = realloc(ps->leaves, cap * sizeof *grown);
    if (!grown) {
      mm_release(g);
      return mm_fail(ctx, "moonml.backward: out of memory");
    }
    ps->leaves = grown;
    ps->leafcap = cap;
  }
  ps->leaves[ps->nleaves++] = (pending_grad){leaf, g};
  return 0;
}

/* Finds every node reachable from root and counts the edges into each. */
static int discover(mm_ctx *ctx, pass_state *ps, mm_node *root, int mark) {
  root->mark = mark;
  root->deps = 0;
  root->grad_acc = NULL;
  if (push_node(ctx, ps, root) != 0)
    return -1;
  for (size_t i = 0; i < ps->n; i++) {
    mm_node *node = ps->nodes[i];
    for (int k = 0; k < node->n_inputs; k++) {
      mm_node *next = node->in[k].node;
      if (!next)
        continue;
      if (next->mark != mark) {
        next->mark = mark;
        next->deps = 0;
        next->grad_acc = NULL;
        if (push_node(ctx, ps, next) != 0)
          return -1;
      }
      next->deps++;
    }
  }
  return 0;
}

static int check_saved(mm_ctx *ctx, const mm_node *node) {
  if (node->view && node->view->inner && check_saved(ctx, node->view->inner) != 0)
    return -1;
  if (node->freed)
    return mm_fail(ctx,
                   "moonml.backward: the graph through %s was already freed by an earlier "
                   "backward; pass {retain_graph = true} to the first call",
                   node->name);
  for (int s = 0; s < node->n_saved; s++)
    if (node->saved[s]->storage->version != node->saved_version[s])
      return mm_fail(ctx,
                     "moonml.backward: a tensor saved by %s was modified by an in-place "
                     "operation after it was saved",
                     node->name);
  return 0;
}

/* Runs one node: its backward, then hands each input's gradient on. */
static int run_node(mm_ctx *ctx, pass_state *ps, mm_node *node, mm_node **ready, size_t *nready) {
  mm_tensor *grad_in[MM_NODE_MAX_INPUTS] = {NULL};
  int status = 0;
  if (node->grad_acc) {
    status = check_saved(ctx, node);
    if (status == 0)
      status = node->backward(ctx, node, node->grad_acc, grad_in);
    mm_release(node->grad_acc);
    node->grad_acc = NULL;
  }
  for (int k = 0; k < node->n_inputs; k++) {
    mm_edge *e = &node->in[k];
    mm_tensor *g = grad_in[k];
    grad_in[k] = NULL;
    if (g && status == 0 && e->needs_grad) {
      mm_tensor *shaped = mm_sum_to_shape(ctx, g, e->ndim, e->shape);
      mm_release(g);
      if (shaped && shaped->dtype != e->dtype) { /* float64 input of a float32 op, ... */
        mm_tensor *conv = mm_to_dtype(ctx, shaped, e->dtype);
        mm_release(shaped);
        shaped = conv;
      }
      if (!shaped)
        status = -1;
      else if (e->node)
        status = accumulate(ctx, &e->node->grad_acc, shaped);
      else
        status = add_leaf_grad(ctx, ps, e->leaf, shaped);
    } else {
      mm_release(g);
    }
    if (e->node && --e->node->deps == 0)
      ready[(*nready)++] = e->node;
  }
  return status;
}

/* A leaf's .grad must be its own tensor: a gradient shared with another leaf or still
 * referenced elsewhere is copied first. */
static int commit_leaf(mm_ctx *ctx, mm_tensor *leaf, mm_tensor *g) {
  if (leaf->grad) {
    int st = mm_binary_(ctx, MM_OP_ADD, leaf->grad, g);
    mm_release(g);
    return st;
  }
  if (g->refcount > 1 || g->storage->refcount > 1 || !mm_is_contiguous(g) ||
      g->dtype != leaf->dtype) {
    mm_tensor *own = mm_empty(ctx, leaf->dtype, g->ndim, g->shape);
    int st = own ? mm_copy_(ctx, own, g) : -1;
    mm_release(g);
    if (st != 0) {
      mm_release(own);
      return -1;
    }
    g = own;
  }
  leaf->grad = g;
  return 0;
}

static int fail_grad_shape(mm_ctx *ctx, const mm_tensor *root, const mm_tensor *grad) {
  char a[96], b[96];
  return mm_fail(ctx, "moonml.backward: grad of shape %s does not match the tensor's shape %s",
                 mm_shape_str(a, sizeof a, grad->ndim, grad->shape),
                 mm_shape_str(b, sizeof b, root->ndim, root->shape));
}

int mm_backward(mm_ctx *ctx, mm_tensor *root, const mm_tensor *grad, bool retain_graph) {
  if (mm_sync_view(ctx, root) != 0)
    return -1;
  if (!root->requires_grad)
    return mm_fail(ctx, "moonml.backward: the tensor does not require grad and has no grad_fn");
  mm_tensor *g0;
  if (!grad) {
    if (mm_numel(root) != 1) {
      char a[96];
      return mm_fail(ctx,
                     "moonml.backward: grad can be implicit only for a one-element tensor, "
                     "got shape %s; pass a gradient",
                     mm_shape_str(a, sizeof a, root->ndim, root->shape));
    }
    g0 = mm_full(ctx, root->dtype, root->ndim, root->shape, 1.0);
  } else {
    bool same = grad->ndim == root->ndim;
    for (int d = 0; same && d < root->ndim; d++)
      same = grad->shape[d] == root->shape[d];
    if (!same)
      return fail_grad_shape(ctx, root, grad);
    g0 = mm_to_dtype(ctx, grad, root->dtype);
  }
  if (!g0)
    return -1;
  bool mode = mm_set_grad_enabled(ctx, false); /* backward records no graph */
  pass_state ps = {0};
  int status = 0;
  if (!root->grad_fn) {
    status = add_leaf_grad(ctx, &ps, root, g0);
  } else {
    status = discover(ctx, &ps, root->grad_fn, ++ctx->backward_pass);
    mm_node **ready = status == 0 ? malloc((ps.n + 1) * sizeof *ready) : NULL;
    if (status == 0 && !ready)
      status = mm_fail(ctx, "moonml.backward: out of memory");
    if (status == 0) {
      size_t nready = 0;
      root->grad_fn->grad_acc = g0;
      g0 = NULL;
      ready[nready++] = root->grad_fn;
      while (nready > 0 && status == 0) {
        mm_node *node = ready[--nready];
        status = run_node(ctx, &ps, node, ready, &nready);
        if (status == 0 && !retain_graph && has_saved(node)) {
          free_saved(node);
          node->freed = true;
          if (node->view && node->view->inner)
            node->view->inner->freed = true;
        }
      }
    }
    free(ready);
    mm_release(g0);
    for (size_t i = 0; i < ps.n; i++) { /* drop what a failed pass left behind */
      mm_release(ps.nodes[i]->grad_acc);
      ps.nodes[i]->grad_acc = NULL;
    }
  }
  for (size_t i = 0; i < ps.nleaves; i++) {
    if (status == 0)
      status = commit_leaf(ctx, ps.leaves[i].leaf, ps.leaves[i].grad);
    else
      mm_release(ps.leaves[i].grad);
  }
  free(ps.leaves);
  free(ps.nodes);
  mm_set_grad_enabled(ctx, mode);
  return status;
}
