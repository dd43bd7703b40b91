/* check_calls.c - checks the calls in model expressions: layers, activations, concat, project.
 *
 * Each call gets a Call record (model.h) with its output dimension; a layer call (dense, mlp) is
 * also queued on the statement being checked, and name_layers then gives the statement's layers
 * their parameters, named by the rules in docs/language.md. */
#include <string.h>

#include "check.h"
#include "functions.h"
#include "ops.h"

enum { MAX_MLP_DEPTH = 1000 }; /* hidden layers of one mlp */

/* ---------------------------------------------------------------------------- parameters */

static Param *add_param(Checker *c, const char *name, int ndim, int out, int in, Loc loc) {
    Param *p = arena_alloc(c->a, sizeof *p);
    p->name = name;
    p->ndim = ndim;
    p->shape[0] = out;
    p->shape[1] = ndim == 2 ? in : 0;
    p->size = ndim == 2 ? (int64_t)out * in : out;
    p->fan_in = in;
    p->loc = loc;
    ptrvec_push(c->a, &c->params, p);
    return p;
}

/* Names the parameters of the statement just checked: `prefix.weight` when it has one dense
 * layer, `prefix.K.weight` (K in evaluation order) when it has several or an mlp. */
void name_layers(Checker *c, const char *prefix) {
    int n_layers = 0;
    for (int i = 0; i < c->layers.n; i++) {
        const Call *k = ((Expr *)c->layers.items[i])->call;
        n_layers += k->kind == FN_MLP ? k->depth + 1 : 1;
    }
    int numbered = n_layers > 1 || (n_layers == 1 && ((Expr *)c->layers.items[0])->call->kind == FN_MLP);
    int layer = 0;
    for (int i = 0; i < c->layers.n; i++) {
        Expr *e = c->layers.items[i];
        Call *k = e->call;
        int in = e->args[0].value->dim;
        k->first_param = c->params.n;
        e->param = c->params.n;
        int n = k->kind == FN_MLP ? k->depth + 1 : 1;
        int wide = 0; /* reported once per call */
        for (int j = 0; j < n; j++, layer++) {
            int out = k->kind == FN_MLP && j < k->depth ? k->widths[j] : k->out;
            if ((out > DINO_MAX_LAYER_DIM || in > DINO_MAX_LAYER_DIM) && !wide++)
                diag_error(c->d, e->loc,
                           "a layer of %d x %d (out x in) is too wide for the CUDA backend's grid; "
                           "each side can be at most %d",
                           out, in, DINO_MAX_LAYER_DIM);
            const char *base = numbered ? arena_printf(c->a, "%s.%d", prefix, layer) : prefix;
            add_param(c, arena_printf(c->a, "%s.weight", base), 2, out, in, e->loc);
            if (k->bias) add_param(c, arena_printf(c->a, "%s.bias", base), 1, out, in, e->loc);
            in = out;
        }
    }
    c->layers.n = 0;
}

/* ---------------------------------------------------------------------------- calls */

/* "relu, tanh, ..., sin" */
static const char *activation_list(Checker *c) {
    const char *list = activation_names[0];
    for (int i = 1; i < ACT_COUNT; i++) list = arena_printf(c->a, "%s, %s", list, activation_names[i]);
    return list;
}

/* "; the functions are dense, mlp, concat, project and the activations relu, ..., sin" */
static const char *function_list(Checker *c) {
    const char *list = NULL;
    for (int i = 0; i < n_functions; i++)
        if (functions[i].kind != FN_ACT)
            list = list ? arena_printf(c->a, "%s, %s", list, functions[i].name) : functions[i].name;
    return arena_printf(c->a, "; the functions are %s and the activations %s", list, activation_list(c));
}

/* A vector argument: any expression with a dimension (not a constant). */
static int vector_arg(Checker *c, Expr *call, int i, const char *what) {
    Expr *x = call->args[i].value;
    int dim = check_expr(c, x);
    if (dim == 0) {
        diag_error(c->d, x->loc, "%s of %s() must be a tensor, not a constant", what, call->str);
        return -1;
    }
    return dim;
}

/* Positional count and allowed keywords of a call, from its row of the table; reports every
 * misplaced argument. Linear in the number of arguments, however many a hostile file gives. */
static int check_arity(Checker *c, Expr *e, const FunctionDef *f) {
    int ok = 1, n_pos = 0, min_pos = f->min_pos, max_pos = f->max_pos, n_keys = 0;
    const char *keys[FN_MAX_ARGS];
    const char *usage = f->usage;
    while (n_keys < FN_MAX_ARGS && f->keys[n_keys].name) keys[n_keys] = f->keys[n_keys].name, n_keys++;
    const Arg *given[FN_MAX_ARGS] = {0}; /* the first use of each known keyword */
    for (int i = 0; i < e->n_args; i++) {
        const Arg *a = &e->args[i];
        if (!a->name) {
            if (n_pos < i) {
                diag_error(c->d, a->value->loc, "positional argument after a keyword argument in %s()", e->str);
                ok = 0;
            }
            n_pos++;
            continue;
        }
        int known = -1;
        for (int k = 0; k < n_keys; k++)
            if (strcmp(keys[k], a->name) == 0) known = k;
        if (known >= 0 && given[known]) {
            diag_error(c->d, a->name_loc, "argument '%s' given twice", a->name);
            ok = 0;
        } else if (known >= 0) {
            given[known] = a;
        } else {
            diag_error(c->d, a->name_loc, "%s() has no argument '%s'%s", e->str, a->name,
                       suggest(c, a->name, keys, n_keys, arena_printf(c->a, "; usage: %s", usage)));
            ok = 0;
        }
    }
    if (n_pos < min_pos || n_pos > max_pos) {
        diag_error(c->d, e->loc, "%s() takes %s%d positional argument%s, got %d; usage: %s", e->str,
                   min_pos == max_pos ? "" : "at least ", min_pos, min_pos == 1 ? "" : "s", n_pos, usage);
        ok = 0;
    }
    return ok ? 0 : -1;
}

static const Expr *keyword(const Expr *e, const char *key) {
    for (int i = 0; i < e->n_args; i++)
        if (e->args[i].name && strcmp(e->args[i].name, key) == 0) return e->args[i].value;
    return NULL;
}

/* A boolean keyword's value when the call leaves it out: the table's default column. */
static int default_bool(const Expr *e, const char *key) {
    const char *value = function_default(function_lookup(e->str), key);
    return value && strcmp(value, "true") == 0;
}

static int want_bool(Checker *c, const Expr *e, const char *what, int *out) {
    if (e->kind == E_NAME && (strcmp(e->str, "true") == 0 || strcmp(e->str, "false") == 0)) {
        *out = e->str[0] == 't';
        return 0;
    }
    diag_error(c->d, e->loc, "%s must be true or false", what);
    return -1;
}

int check_dense(Checker *c, Expr *e, Call *k) {
    int in = vector_arg(c, e, 0, "the input");
    int64_t n;
    int bad = want_int(c, e->args[1].value, "the size of dense()", 1, DINO_MAX_DIM, &n);
    k->bias = default_bool(e, "bias");
    const Expr *b = keyword(e, "bias");
    if (b && want_bool(c, b, "bias", &k->bias)) bad = 1;
    if (bad) return -1;
    k->out = (int)n;
    if (in < 0) return k->out; /* the input's error is reported; the output size is still known */
    ptrvec_push(c->a, &c->layers, e);
    return k->out;
}

int check_mlp(Checker *c, Expr *e, Call *k) {
    const char *usage = function_lookup("mlp")->usage;
    int in = vector_arg(c, e, 0, "the input");
    int64_t n;
    int bad = want_int(c, e->args[1].value, "the size of mlp()", 1, DINO_MAX_DIM, &n);
    const Expr *width = keyword(e, "width"), *depth = keyword(e, "depth"), *widths = keyword(e, "widths");
    if (widths && (width || depth)) {
        diag_error(c->d, widths->loc, "give either widths = [...] or width and depth, not both");
        return -1;
    }
    if (widths) {
        if (widths->kind != E_LIST || widths->n_args == 0) {
            diag_error(c->d, widths->loc, "widths must be a non-empty list of sizes, e.g. [256, 128]");
            return -1;
        }
        if (widths->n_args > MAX_MLP_DEPTH) {
            diag_error(c->d, widths->loc, "widths lists %d hidden layers; an mlp has at most %d", widths->n_args,
                       MAX_MLP_DEPTH);
            return -1;
        }
        k->depth = widths->n_args;
        k->widths = arena_alloc(c->a, sizeof(int) * (size_t)k->depth);
        for (int i = 0; i < k->depth; i++) {
            int64_t w;
            if (want_int(c, widths->args[i].value, "a width", 1, DINO_MAX_DIM, &w)) bad = 1;
            else k->widths[i] = (int)w;
        }
    } else if (!width || !depth) {
        diag_error(c->d, e->loc, "mlp() needs width and depth (or widths); usage: %s", usage);
        return -1;
    } else {
        int64_t w, d;
        if (want_int(c, width, "width", 1, DINO_MAX_DIM, &w) | want_int(c, depth, "depth", 1, MAX_MLP_DEPTH, &d))
            return -1;
        k->depth = (int)d;
        k->widths = arena_alloc(c->a, sizeof(int) * (size_t)k->depth);
        for (int i = 0; i < k->depth; i++) k->widths[i] = (int)w;
    }
    k->act = activation_lookup(function_default(function_lookup(e->str), "act"));
    const Expr *act = keyword(e, "act");
    if (act) {
        if (act->kind != E_NAME || activation_lookup(act->str) < 0) {
            const char *name = act->kind == E_NAME ? act->str : "";
            diag_error(c->d, act->loc, "unknown activation%s%s%s", act->kind == E_NAME ? " '" : "",
                       act->kind == E_NAME ? arena_printf(c->a, "%s'", name) : "",
                       suggest(c, name, activation_names, ACT_COUNT,
                               arena_printf(c->a, "; the activations are %s", activation_list(c))));
            bad = 1;
        } else {
            k->act = activation_lookup(act->str);
        }
    }
    const Expr *res = keyword(e, "residual"), *bias = keyword(e, "bias");
    k->residual = default_bool(e, "residual");
    if (res && want_bool(c, res, "residual", &k->residual)) bad = 1;
    k->bias = default_bool(e, "bias");
    if (bias && want_bool(c, bias, "bias", &k->bias)) bad = 1;
    if (bad) return -1;
    k->out = (int)n;
    if (in < 0) return k->out; /* the input's error is reported; the output size is still known */
    ptrvec_push(c->a, &c->layers, e);
    return k->out;
}

int check_concat(Checker *c, Expr *e, Call *k) {
    int64_t total = 0;
    int bad = 0;
    for (int i = 0; i < e->n_args; i++) {
        int d = vector_arg(c, e, i, "an argument");
        if (d < 0) bad = 1;
        else total += d;
    }
    if (bad) return -1;
    if (total > DINO_MAX_DIM) {
        diag_error(c->d, e->loc, "concat() result has dimension %lld, more than %d", (long long)total, DINO_MAX_DIM);
        return -1;
    }
    k->out = (int)total;
    return k->out;
}

int check_project(Checker *c, Expr *e, Call *k) {
    int in = vector_arg(c, e, 0, "the input");
    const char *file;
    if (want_string(c, e->args[1].value, "the matrix file of project()", &file) || in < 0) return -1;
    int as_is = file[0] == '/' || !c->opt->spec_dir || strcmp(c->opt->spec_dir, ".") == 0;
    k->file = as_is ? file : arena_printf(c->a, "%s/%s", c->opt->spec_dir, file);
    if (!c->opt->npy_shape) {
        diag_error(c->d, e->args[1].value->loc, "project() can't be checked here: no .npy reader");
        return -1;
    }
    int64_t shape[8];
    int ndim;
    char err[512];
    if (c->opt->npy_shape(k->file, shape, &ndim, err, sizeof err)) {
        diag_error(c->d, e->args[1].value->loc, "the matrix of project(): %s", err);
        return -1;
    }
    if (ndim != 2 || shape[1] != in || shape[0] < 1 || shape[0] > DINO_MAX_DIM) {
        char got[64] = "";
        int len = 0;
        for (int i = 0; i < ndim && len < 50; i++)
            len += snprintf(got + len, sizeof got - (size_t)len, "%s%lld", i ? ", " : "", (long long)shape[i]);
        diag_error(c->d, e->args[1].value->loc,
                   "project() matrix '%s' has shape [%s]; expected [n, %d] for an input of dimension %d", file, got, in,
                   in);
        return -1;
    }
    k->out = (int)shape[0];
    return k->out;
}

int check_activation(Checker *c, Expr *e, Call *k) {
    k->act = activation_lookup(e->str);
    return k->out = vector_arg(c, e, 0, "the argument");
}

int check_call(Checker *c, Expr *e) {
    Call *k = arena_alloc(c->a, sizeof *k);
    e->call = k;
    const FunctionDef *f = function_lookup(e->str);
    if (!f) {
        const char **names = arena_alloc(c->a, sizeof(char *) * (size_t)n_functions);
        for (int i = 0; i < n_functions; i++) names[i] = functions[i].name;
        diag_error(c->d, e->loc, "unknown function '%s'%s", e->str,
                   suggest(c, e->str, names, n_functions, function_list(c)));
        return -1;
    }
    k->kind = f->kind;
    if (check_arity(c, e, f)) return -1;
    int dim = f->check(c, e, k);
    if (dim >= 0 && !f->lowered) {
        diag_error(c->d, e->loc,
                   "%s() is not supported by the code generators yet; no C or CUDA can be "
                   "generated for a model that calls it",
                   e->str);
        return -1;
    }
    return dim;
}
