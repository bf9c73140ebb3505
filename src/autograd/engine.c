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

int mm_node_begin(mm_ctx *ctx, const char *name, mm_backward_fn fn, int n_inputs,
                  const mm_tensor *const *inputs, mm_node **out) {
  *out = NULL;
  if (!ctx->grad_enabled)
    return 0;
  bool any = false;
  for (int k = 0; k < n_inputs; k++)
    any = any || (inputs[k] && inputs[k]->requires_grad);
  if (!any)
    return 0;
  mm_node *node = calloc(1, sizeof *node);
  if (!node)
    return mm_fail(ctx, "moonml.%s: out of memory recording the graph", name);
  node->refcount = 1;
  node->name = name;
  node->backward = fn;
  node->n_inputs = n_inputs;
  for (int k = 0; k < n_inputs; k++) {
    const mm_tensor *t = inputs[k];
    mm_edge *e = &node->in[k];
    if (!t || !t->requires_grad)
      continue;
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
  *out = node;
  return 0;
}

int mm_node_save(mm_ctx *ctx, mm_node *node, const mm_tensor *t) {
  if (node->n_saved == MM_NODE_MAX_SAVED)
    return mm_fail(ctx, "moonml.%s: too many saved tensors", node->name);
  mm_tensor *d = mm_detach(ctx, t);
  if (!d)
    return -1;
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
}

/* Iterative, so that releasing a graph a million nodes long cannot overflow the stack. */
void mm_node_release(mm_node *node) {
  if (!node || --node->refcount > 0)
    return;
  size_t cap = 16, n = 0;
  mm_node **stack = malloc(cap * sizeof *stack);
  mm_node *cur = node;
  for (;;) {
    for (int k = 0; k < cur->n_inputs; k++) {
      mm_release(cur->in[k].leaf);
      mm_node *next = cur->in[k].node;
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
        if (status == 0 && !retain_graph && node->n_saved > 0) {
          free_saved(node);
          node->freed = true;
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
